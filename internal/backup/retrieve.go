package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// VersionStore reads stored versions for a retrieve, one chunk at a time, so
// that a retrieve holds a small fixed buffer whatever the version's size.
type VersionStore interface {
	// OpenVersion is a retrieve's first read, in one round trip that also
	// counts it against limit (ERATELIMITED past it): one version of an
	// object (0: the latest), its first len(buf) bytes read into buf. A
	// version of at most len(buf) bytes comes whole. A larger one is pinned
	// until pinUntil, so that retention keeps its bytes while ReadChunk reads
	// the rest. ErrNotFound when the object has no such version,
	// ErrPayloadDropped when its bytes are no longer held.
	OpenVersion(ctx context.Context, key ObjectKey, version int64, now time.Time, limit ReadLimit, pinUntil time.Time, buf []byte) (OpenedVersion, error)
	// ReadChunk reads len(buf) bytes of a version from byte off into buf
	// and returns them; ErrPayloadDropped when they are no longer held.
	// With unpin set (the last chunk), it also ends the pin set until then,
	// as Unpin does, in the same round trip.
	ReadChunk(ctx context.Context, v VersionID, off int64, buf []byte, unpin time.Time) ([]byte, error)
	// Unpin ends the pin OpenVersion set until until, unless a later
	// retrieve of the same version pinned it further.
	Unpin(ctx context.Context, v VersionID, until time.Time) error
}

// VersionID names one stored version for the reads after the first. A
// version's bytes never change, so every read of it returns the same bytes
// or none.
type VersionID struct {
	ObjectID int64
	Version  int64
}

// OpenedVersion is what a retrieve's first read returns.
type OpenedVersion struct {
	ID   VersionID
	Size int64
	// Head is the version's first bytes: all of them when Size fits the
	// buffer, else a whole buffer's worth.
	Head []byte
	// Pinned says retention keeps the version until the pin given to
	// OpenVersion expires or is ended.
	Pinned bool
}

// pinMargin is how much longer than the longest stream a version stays
// pinned: the stream's deadline starts a moment before the pin, and the
// retention that honours the pin may run on another replica whose clock is
// a little off.
const pinMargin = time.Minute

// defaultMaxStream is the longest stream when the Service is not told
// (WRITE_TIMEOUT's default).
const defaultMaxStream = 5 * time.Minute

// Option configures a Service.
type Option func(*Service)

// WithMaxStream says how long a retrieve's reply may take at most (the
// server's WRITE_TIMEOUT): a version being streamed stays pinned that long
// plus a margin.
func WithMaxStream(d time.Duration) Option {
	return func(s *Service) { s.maxStream = d }
}

// WithPaced tells paced of every persist that waits for its turn under its
// node's allowance, and how long.
func WithPaced(paced func(TenantID, time.Duration)) Option {
	return func(s *Service) { s.paced = paced }
}

// RetrieveRequest is a retrieve whose parameters were checked.
type RetrieveRequest struct {
	key     ObjectKey
	version int64 // 0: the latest
	limit   ReadLimit
}

// ParseRetrieve checks a retrieve's parameters as they came off the wire:
// the object's key, and version, empty for the latest or a positive integer.
func ParseRetrieve(tenant *Tenant, node NodeKey, network, label, channelID, version string) (RetrieveRequest, error) {
	key, err := ParseObjectKey(tenant, node, network, label, channelID)
	if err != nil {
		return RetrieveRequest{}, err
	}
	var v int64
	if version != "" {
		if v, err = parsePositive("version", version); err != nil {
			return RetrieveRequest{}, err
		}
	}
	return RetrieveRequest{key: key, version: v, limit: tenant.readLimit(node)}, nil
}

// openAttempts bounds how often a retrieve of the latest version looks again
// when the version it found lost its bytes before it could pin them: with
// RETAIN_VERSIONS=1 a persist racing the read drops the version that was
// the latest a moment before, and the new latest is the answer.
const openAttempts = 3

// Retrieve opens the version req names for reading into buf, which the
// caller owns and keeps until the Download is closed: a version of at most
// len(buf) bytes is read whole at once, a larger one len(buf) bytes at a
// time, each chunk in a query of its own, and the version is pinned so that
// the bytes read last belong to the version read first.
func (s *Service) Retrieve(ctx context.Context, req RetrieveRequest, buf []byte) (*Download, error) {
	if len(buf) == 0 {
		return nil, errors.New("retrieve: empty buffer")
	}
	now := s.clock.Now()
	pinUntil := now.Add(s.maxStream + pinMargin)
	limit := req.limit
	for attempt := 1; ; attempt++ {
		v, err := s.store.OpenVersion(ctx, req.key, req.version, now, limit, pinUntil, buf)
		switch {
		case errors.Is(err, ErrPayloadDropped) && req.version == 0 && attempt < openAttempts:
			limit = ReadLimit{} // counted once
			continue
		case errors.Is(err, ErrNotFound) && req.version != 0:
			return nil, Errorf(ENOTFOUND, "no version %d of this backup", req.version)
		case errors.Is(err, ErrNotFound):
			return nil, Errorf(ENOTFOUND, "backup not found")
		case errors.Is(err, ErrPayloadDropped) && req.version != 0:
			return nil, Errorf(ENOTFOUND, "the bytes of version %d are no longer held (retention)", req.version)
		case errors.Is(err, ErrPayloadDropped):
			return nil, &Error{Code: EUNAVAILABLE, Message: "the backup changed while it was read, retry", RetryAfter: time.Second}
		case err != nil:
			return nil, err
		}
		d := &Download{store: s.store, id: v.ID, size: v.Size, buf: buf, pending: v.Head}
		if v.Pinned {
			d.pinUntil = pinUntil
		}
		if want := min(v.Size, int64(len(buf))); int64(len(v.Head)) != want {
			_ = d.Close(ctx)
			return nil, fmt.Errorf("retrieve: first read of %d bytes, want %d", len(v.Head), want)
		}
		return d, nil
	}
}

// Download is a retrieve in progress: one version, read a chunk at a time
// into the buffer given to Retrieve. Close it when done.
type Download struct {
	store    VersionStore
	id       VersionID
	size     int64
	buf      []byte
	pending  []byte    // the first chunk, read by OpenVersion and not yet returned
	off      int64     // bytes returned so far
	pinUntil time.Time // zero: not pinned, or the pin was ended
	unpinErr error     // how ending the pin went, when it was
}

// Size is the version's size in bytes.
func (d *Download) Size() int64 { return d.size }

// Next returns the version's next chunk, valid until the next call (it lives
// in the buffer), and io.EOF after the last. An error means the version
// cannot be read whole; the bytes returned so far are still its own.
func (d *Download) Next(ctx context.Context) ([]byte, error) {
	if d.pending != nil {
		p := d.pending
		d.pending = nil
		d.off += int64(len(p))
		return p, nil
	}
	if d.off >= d.size {
		return nil, io.EOF
	}
	n := min(int64(len(d.buf)), d.size-d.off)
	// Once the last chunk is read the version need not be kept for this
	// retrieve, while the client takes that chunk: the read ends the pin.
	var unpin time.Time
	if d.off+n == d.size {
		unpin = d.pinUntil
	}
	chunk, err := d.store.ReadChunk(ctx, d.id, d.off, d.buf[:n], unpin)
	if err != nil {
		return nil, err
	}
	if int64(len(chunk)) != n {
		return nil, fmt.Errorf("retrieve: chunk at byte %d of version %d has %d bytes, want %d", d.off, d.id.Version, len(chunk), n)
	}
	d.off += n
	if !unpin.IsZero() {
		d.pinUntil = time.Time{}
	}
	return chunk, nil
}

// Close ends the version's pin if the last chunk did not. It is best
// effort: a pin that is not ended expires by itself.
func (d *Download) Close(ctx context.Context) error {
	d.unpin(ctx)
	return d.unpinErr
}

func (d *Download) unpin(ctx context.Context) {
	if d.pinUntil.IsZero() {
		return
	}
	// A failed attempt leaves the pin for Close to try again.
	if d.unpinErr = d.store.Unpin(ctx, d.id, d.pinUntil); d.unpinErr == nil {
		d.pinUntil = time.Time{}
	}
}
