package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/dbsqlc"
)

// OpenVersion is a retrieve's first read (ObjectVersionOpen): the version's
// size and its first len(buf) bytes, read into buf, and a pin when it is
// larger than buf (ObjectVersionPin, a second round trip only for those).
// The read counts against the node's rate limit in the first round trip; a
// refusal of the node's read is recorded.
func (s *Store) OpenVersion(ctx context.Context, key backup.ObjectKey, version int64, now time.Time, limit backup.ReadLimit, pinUntil time.Time, buf []byte) (backup.OpenedVersion, error) {
	q := dbsqlc.New(intoBuffer{s.pool, buf})
	for attempt := 0; ; attempt++ {
		row, err := q.ObjectVersionOpen(ctx, dbsqlc.ObjectVersionOpenParams{
			RateKey:       limit.NodeRateKey,
			Now:           now,
			WindowSeconds: backup.MinuteWindow,
			RateLimit:     clampInt32(limit.NodePerMinute),
			ChunkBytes:    int32(len(buf)),
			Version:       version,
			TenantID:      int64(key.Tenant),
			NodeKey:       key.Node[:],
			Network:       string(key.Network),
			Label:         key.Label,
			ChannelID:     channelIDBytes(key.ChannelID),
		})
		if err != nil {
			s.recordIfRefused(ctx, key.Tenant, key.Node, err, now)
			return backup.OpenedVersion{}, interpretError(err)
		}
		switch {
		case !row.Found:
			return backup.OpenedVersion{}, backup.ErrNotFound
		case !row.Held:
			return backup.OpenedVersion{}, backup.ErrPayloadDropped
		}
		opened := backup.OpenedVersion{ID: backup.VersionID{ObjectID: row.ObjectID, Version: row.Version}, Size: row.Size, Head: row.Data}
		if row.Size <= int64(len(buf)) {
			return opened, nil
		}
		head, err := q.ObjectVersionPin(ctx, dbsqlc.ObjectVersionPinParams{ObjectID: row.ObjectID, Version: row.Version, PinUntil: pinUntil, ChunkBytes: int32(len(buf))})
		if errors.Is(err, pgx.ErrNoRows) {
			// Retention deleted the version between the two reads: the
			// latest has moved on, so read the new latest; a version named
			// by number is no longer held.
			if version == 0 && attempt < 3 {
				continue
			}
			return backup.OpenedVersion{}, backup.ErrPayloadDropped
		}
		if err != nil {
			return backup.OpenedVersion{}, interpretError(err)
		}
		opened.Head, opened.Pinned = head, true
		return opened, nil
	}
}

// ReadChunk reads len(buf) bytes of a version from byte off into buf, in a
// query of its own: the connection is the pool's again as soon as the bytes
// are in buf, whatever the client does with them. With unpin set, the same
// round trip ends the pin set until then (ObjectVersionLastChunk).
func (s *Store) ReadChunk(ctx context.Context, v backup.VersionID, off int64, buf []byte, unpin time.Time) ([]byte, error) {
	q := dbsqlc.New(intoBuffer{s.pool, buf})
	var chunk []byte
	var err error
	if unpin.IsZero() {
		chunk, err = q.ObjectVersionChunk(ctx, dbsqlc.ObjectVersionChunkParams{
			Start: int32(off + 1), Length: int32(len(buf)), ObjectID: v.ObjectID, Version: v.Version,
		})
	} else {
		chunk, err = q.ObjectVersionLastChunk(ctx, dbsqlc.ObjectVersionLastChunkParams{
			Start: int32(off + 1), Length: int32(len(buf)), ObjectID: v.ObjectID, Version: v.Version, PinUntil: unpin,
		})
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, backup.ErrPayloadDropped
	}
	return chunk, interpretError(err)
}

// Unpin ends a retrieve's pin of a version.
func (s *Store) Unpin(ctx context.Context, v backup.VersionID, until time.Time) error {
	return interpretError(s.q.ObjectVersionUnpin(ctx, dbsqlc.ObjectVersionUnpinParams{ObjectID: v.ObjectID, Version: v.Version, PinUntil: until}))
}

// intoBuffer runs a generated query that returns one bytea column, scanning
// it into buf instead of a new slice, so that a retrieve reads every chunk of
// a version into the one buffer it took from the in-flight budget.
type intoBuffer struct {
	dbsqlc.DBTX
	buf []byte
}

func (b intoBuffer) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return bufferedRow{b.DBTX.QueryRow(ctx, sql, args...), b.buf}
}

type bufferedRow struct {
	pgx.Row
	buf []byte
}

func (r bufferedRow) Scan(dest ...any) error {
	// PreallocBytes copies into its slice when the value fits its length, and
	// scans NULL as nil.
	into := pgtype.PreallocBytes(r.buf[:cap(r.buf)])
	var target *[]byte
	for i, d := range dest {
		if p, ok := d.(*[]byte); ok {
			if target != nil {
				return fmt.Errorf("intoBuffer: more than one bytea column")
			}
			target, dest[i] = p, &into
		}
	}
	if target == nil {
		return fmt.Errorf("intoBuffer: no bytea column")
	}
	err := r.Row.Scan(dest...)
	*target = into
	return err
}
