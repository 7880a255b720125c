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
	now       func() time.Time
	retain    int
	maxStream time.Duration // the longest a retrieve's reply may take
}

// NewService returns a Service over store that keeps the bytes of the newest
// retain versions of each object.
func NewService(store ObjectStore, now func() time.Time, retain int, opts ...Option) *Service {
	s := &Service{store: store, now: now, retain: retain, maxStream: defaultMaxStream}
	for _, o := range opts {
		o(s)
	}
	return s
}

// PersistRequest carries a persist request's values as they came off the
// wire; Persist validates every one.
type PersistRequest struct {
	Tenant     *Tenant
	PublicKey  string
	SignedHash string
	Challenge  string
	Network    string
	Label      string
	ChannelID  string
	Body       []byte
	// Address is the client's address as counted by rate limits.
	Address string
}

// PersistResult is the reply to an accepted persist.
type PersistResult struct {
	// Signature is the server's signature over the request's Challenge: the
	// apps check it against the server key they pinned.
	Signature string
	Version   int64
}

// Persist verifies that the node signed the SHA-256 of the body, stores the
// body as the object's next version, and signs the client's challenge. A body
// equal to the latest version is a retry and succeeds without a new version;
// a body the node uploaded before otherwise is a replay and is refused.
func (s *Service) Persist(ctx context.Context, req PersistRequest) (PersistResult, error) {
	node, err := ParseNodeKey(req.PublicKey)
	if err != nil {
		return PersistResult{}, err
	}
	key, err := ParseObjectKey(req.Tenant, node, req.Network, req.Label, req.ChannelID)
	if err != nil {
		return PersistResult{}, err
	}
	if req.SignedHash == "" {
		return PersistResult{}, Errorf(EINVALID, "missing Signed-Hash header")
	}
	if err := validateChallenge(req.Challenge); err != nil {
		return PersistResult{}, err
	}
	if len(req.Body) == 0 {
		return PersistResult{}, Errorf(EINVALID, "empty body")
	}

	sum := sha256.Sum256(req.Body)
	if err := VerifyNodeSignature(node, hex.EncodeToString(sum[:]), req.SignedHash); err != nil {
		return PersistResult{}, err
	}
	res, err := s.store.PutObject(ctx, key, req.Body, sum, s.now(), s.retain, req.Tenant.writeLimits(node, req.Address))
	if err != nil {
		return PersistResult{}, err
	}
	return PersistResult{Signature: lnsig.SignBackup(req.Tenant.ServerKey, req.Challenge), Version: res.Version}, nil
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
	return s.store.DeleteObjects(ctx, tenant.ID, node, net, s.now())
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
	res, err := s.store.RestoreVersion(ctx, key, version, s.now(), s.retain)
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
	keys, err := s.store.ListObjectKeys(ctx, tenant.ID, node, net, s.now(), tenant.readLimit(node))
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
