package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"time"

	"ldkbackup/internal/lnsig"
)

// ObjectStore keeps objects and their versions durably. Writes return only
// after they are committed.
type ObjectStore interface {
	// PutObject stores payload as the object's next version; an error with
	// code ECONFLICT when the node uploaded these bytes before (a replay).
	// Limits are enforced in the same transaction: ERATELIMITED, EQUOTA.
	// A persist over its node's allowance that may wait for its turn
	// (limits.PaceMaxWait) stores nothing and returns PutResult.Wait: the
	// turn is taken, and the caller calls again after the wait without the
	// node's rate limit.
	PutObject(ctx context.Context, key ObjectKey, payload []byte, sum [sha256.Size]byte, now time.Time, retain int, limits WriteLimits) (PutResult, error)
	VersionStore
	// ListObjectKeys lists a node's objects on a network, counting the list
	// against limit in the same round trip: ERATELIMITED past it.
	ListObjectKeys(ctx context.Context, tenant TenantID, node NodeKey, network Network, now time.Time, limit ReadLimit) ([]StoredKey, error)
	ObjectVersions(ctx context.Context, key ObjectKey, before int64, limit int) ([]VersionInfo, error)
	DeleteObjects(ctx context.Context, tenant TenantID, node NodeKey, network Network, now time.Time) (Deletion, error)
	RestoreVersion(ctx context.Context, key ObjectKey, version int64, now time.Time, retain int) (PutResult, error)
}

// PutResult is the outcome of a write.
type PutResult struct {
	Version int64
	// Unchanged: the body equals the latest version, so nothing was written
	// (a client's retry of a persist that already succeeded).
	Unchanged bool
	// Wait, when positive, is how long the persist must wait for its turn
	// under the node's allowance before it is stored; nothing was written.
	Wait time.Duration
}

// Clock is the time every rule uses, and the wait of a paced persist.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx is done (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StoredKey is the part of an object's key that list reports.
type StoredKey struct {
	Label     string
	ChannelID []byte
}

// VersionInfo describes one version of an object.
type VersionInfo struct {
	Version   int64     `json:"version"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"created_at"`
	// Held is false once retention has dropped the version's bytes.
	Held bool `json:"held"`
}

// Deletion is what an account deletion removed.
type Deletion struct {
	Objects  int64 `json:"objects"`
	Versions int64 `json:"versions"`
	Bytes    int64 `json:"bytes"`
}

// Service persists, lists and retrieves a node's objects and their history.
type Service struct {
	store     ObjectStore
	clock     Clock
	retain    int
	paced     func(TenantID, time.Duration)
	maxStream time.Duration // the longest a retrieve's reply may take
}

// NewService returns a Service over store that keeps the bytes of the newest
// retain versions of each object, on clock.
func NewService(store ObjectStore, clock Clock, retain int, opts ...Option) *Service {
	s := &Service{store: store, clock: clock, retain: retain, paced: func(TenantID, time.Duration) {}, maxStream: defaultMaxStream}
	for _, o := range opts {
		o(s)
	}
	return s
}

// PersistRequest carries a persist request's headers and query as they came
// off the wire; ParsePersistRequest validates every one.
type PersistRequest struct {
	Tenant     *Tenant
	PublicKey  string
	SignedHash string
	Challenge  string
	Network    string
	Label      string
	ChannelID  string
	// Address is the client's address as counted by rate limits.
	Address string
}

// ParsedPersist is a persist request whose headers and query are valid; only
// ParsePersistRequest makes one, so Persist never sees an unchecked one.
type ParsedPersist struct {
	req PersistRequest
	key ObjectKey
}

// ParsePersistRequest checks everything of a persist request but its body.
// It needs no body, so a server can refuse a malformed request before it
// reads (and holds) an upload of up to MAX_BODY_BYTES.
func ParsePersistRequest(req PersistRequest) (ParsedPersist, error) {
	node, err := ParseNodeKey(req.PublicKey)
	if err != nil {
		return ParsedPersist{}, err
	}
	key, err := ParseObjectKey(req.Tenant, node, req.Network, req.Label, req.ChannelID)
	if err != nil {
		return ParsedPersist{}, err
	}
	if req.SignedHash == "" {
		return ParsedPersist{}, Errorf(EINVALID, "missing Signed-Hash header")
	}
	if err := validateChallenge(req.Challenge); err != nil {
		return ParsedPersist{}, err
	}
	return ParsedPersist{req: req, key: key}, nil
}

// PersistResult is the reply to an accepted persist.
type PersistResult struct {
	// Signature is the server's signature over the request's Challenge: the
	// apps check it against the server key they pinned.
	Signature string
	Version   int64
	// Stored is false for a retry of the latest bytes, which stores nothing.
	Stored bool
	// Waited is how long the persist waited for its turn (pacing).
	Waited time.Duration
}

// Persist verifies that the node signed the SHA-256 of body, stores body as
// the object's next version, and signs the client's challenge. A body equal
// to the latest version is a retry and succeeds without a new version; a
// body the node uploaded before otherwise is a replay and is refused.
func (s *Service) Persist(ctx context.Context, p ParsedPersist, body []byte) (PersistResult, error) {
	if p.req.Tenant == nil {
		return PersistResult{}, errors.New("persist of a request ParsePersistRequest did not make")
	}
	if len(body) == 0 {
		return PersistResult{}, Errorf(EINVALID, "empty body")
	}
	req, node := p.req, p.key.Node
	sum := sha256.Sum256(body)
	if err := VerifyNodeSignature(node, hex.EncodeToString(sum[:]), req.SignedHash); err != nil {
		return PersistResult{}, err
	}
	limits := req.Tenant.writeLimits(node, req.Address)
	res, err := s.store.PutObject(ctx, p.key, body, sum, s.clock.Now(), s.retain, limits)
	var waited time.Duration
	if err == nil && res.Wait > 0 {
		// The node proved its key and is over its allowance: its turn is
		// taken, and it waits for it holding no connection, instead of a
		// refusal the Android client would turn into a lost backup.
		waited = res.Wait
		s.paced(req.Tenant.ID, waited)
		if err := s.clock.Sleep(ctx, waited); err != nil {
			return PersistResult{}, Errorf(EUNAVAILABLE, "request ended while waiting for its turn")
		}
		limits.NodePerMinute = 0
		res, err = s.store.PutObject(ctx, p.key, body, sum, s.clock.Now(), s.retain, limits)
	}
	if err != nil {
		return PersistResult{}, err
	}
	return PersistResult{Signature: lnsig.SignBackup(req.Tenant.ServerKey, req.Challenge), Version: res.Version, Stored: !res.Unchanged, Waited: waited}, nil
}

// Versions lists an object's versions, newest first: at most limit (default
// 100, at most 1000) below version before (default: all).
func (s *Service) Versions(ctx context.Context, tenant *Tenant, node NodeKey, network, label, channelID, before, limit string) ([]VersionInfo, error) {
	key, err := ParseObjectKey(tenant, node, network, label, channelID)
	if err != nil {
		return nil, err
	}
	b, n := int64(math.MaxInt64), int64(100)
	if before != "" {
		if b, err = parsePositive("before", before); err != nil {
			return nil, err
		}
	}
	if limit != "" {
		if n, err = parsePositive("limit", limit); err != nil {
			return nil, err
		}
		if n > 1000 {
			return nil, Errorf(EINVALID, "limit must be at most 1000")
		}
	}
	vs, err := s.store.ObjectVersions(ctx, key, b, int(n))
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 && before == "" {
		return nil, Errorf(ENOTFOUND, "backup not found")
	}
	return vs, nil
}

// DeleteAccount removes every object and version node stored on network
// under tenant, and says what it removed.
func (s *Service) DeleteAccount(ctx context.Context, tenant *Tenant, node NodeKey, network string) (Deletion, error) {
	net, err := ParseNetwork(network)
	if err != nil {
		return Deletion{}, err
	}
	return s.store.DeleteObjects(ctx, tenant.ID, node, net, s.clock.Now())
}

// History lists every version of an object for an operator.
func (s *Service) History(ctx context.Context, tenant *Tenant, nodeHex, network, label, channelID string) ([]VersionInfo, error) {
	node, err := ParseNodeKey(nodeHex)
	if err != nil {
		return nil, err
	}
	key, err := ParseObjectKey(tenant, node, network, label, channelID)
	if err != nil {
		return nil, err
	}
	vs, err := s.store.ObjectVersions(ctx, key, math.MaxInt64, math.MaxInt32)
	if err == nil && len(vs) == 0 {
		return nil, Errorf(ENOTFOUND, "backup not found")
	}
	return vs, err
}

// RestoreVersion makes a copy of version the object's latest version, for an
// operator undoing a bad upload.
func (s *Service) RestoreVersion(ctx context.Context, tenant *Tenant, nodeHex, network, label, channelID string, version int64) (PutResult, error) {
	node, err := ParseNodeKey(nodeHex)
	if err != nil {
		return PutResult{}, err
	}
	key, err := ParseObjectKey(tenant, node, network, label, channelID)
	if err != nil {
		return PutResult{}, err
	}
	if version < 1 {
		return PutResult{}, Errorf(EINVALID, "version must be a positive integer")
	}
	res, err := s.store.RestoreVersion(ctx, key, version, s.clock.Now(), s.retain)
	if errors.Is(err, ErrNotFound) {
		return PutResult{}, Errorf(ENOTFOUND, "no version %d of this backup", version)
	}
	if errors.Is(err, ErrPayloadDropped) {
		return PutResult{}, Errorf(ENOTFOUND, "the bytes of version %d are no longer held (retention)", version)
	}
	return res, err
}

// Listing is the reply to list. Both slices are never nil: the iOS app
// decodes them as non-optional arrays.
type Listing struct {
	List            []string `json:"list"`
	ChannelMonitors []string `json:"channel_monitors"`
}

// List names node's objects on network that belong to fileGroup.
func (s *Service) List(ctx context.Context, tenant *Tenant, node NodeKey, network, fileGroup string) (Listing, error) {
	net, err := ParseNetwork(network)
	if err != nil {
		return Listing{}, err
	}
	group, err := ParseFileGroup(fileGroup)
	if err != nil {
		return Listing{}, err
	}
	keys, err := s.store.ListObjectKeys(ctx, tenant.ID, node, net, s.clock.Now(), tenant.readLimit(node))
	if err != nil {
		return Listing{}, err
	}
	return newListing(tenant.Labels, group, keys), nil
}

// newListing applies the fileGroup rules: ldk lists ldk labels and every
// monitor, bitkit lists bitkit labels and no monitors, all lists everything
// (labels of the "other" group only there).
func newListing(policy LabelPolicy, group FileGroup, keys []StoredKey) Listing {
	l := Listing{List: []string{}, ChannelMonitors: []string{}}
	for _, k := range keys {
		if k.Label == LabelChannelMonitor {
			if group != FileGroupBitkit {
				l.ChannelMonitors = append(l.ChannelMonitors, hex.EncodeToString(k.ChannelID)+".bin")
			}
			continue
		}
		labelGroup, _ := policy.Group(k.Label)
		if group == FileGroupAll || string(labelGroup) == string(group) {
			l.List = append(l.List, k.Label+".bin")
		}
	}
	return l
}

// VerifyNodeSignature checks a protocol signature (zbase32 signmessage over
// the backup prefix and payload) against node's key.
func VerifyNodeSignature(node NodeKey, payload, signature string) error {
	pub, err := lnsig.Recover([]byte(lnsig.BackupPrefix+payload), signature)
	if err != nil {
		return Errorf(EUNAUTHORIZED, "invalid signature")
	}
	if [33]byte(pub.SerializeCompressed()) != node {
		return Errorf(EUNAUTHORIZED, "invalid signature")
	}
	return nil
}

// validateChallenge checks the persist Challenge header: the hex SHA-256 the
// apps compute. The server signs it as sent.
func validateChallenge(c string) error {
	if c == "" {
		return Errorf(EINVALID, "missing Challenge header")
	}
	if len(c) != 64 {
		return Errorf(EINVALID, "Challenge must be 64 hex characters")
	}
	if _, err := hex.DecodeString(c); err != nil {
		return Errorf(EINVALID, "Challenge must be 64 hex characters")
	}
	return nil
}

// parsePositive parses a positive decimal integer query parameter.
func parsePositive(name, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || s[0] == '+' {
		return 0, Errorf(EINVALID, "%s must be a positive integer", name)
	}
	return n, nil
}
