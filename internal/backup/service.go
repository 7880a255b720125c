package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"ldkbackup/internal/lnsig"
)

// ObjectStore keeps objects durably. PutObject returns only after the write
// is committed.
type ObjectStore interface {
	PutObject(ctx context.Context, key ObjectKey, payload []byte, sum [sha256.Size]byte, now time.Time) error
	GetObject(ctx context.Context, key ObjectKey) ([]byte, error)
	ListObjectKeys(ctx context.Context, tenant TenantID, node NodeKey, network Network) ([]StoredKey, error)
}

// StoredKey is the part of an object's key that list reports.
type StoredKey struct {
	Label     string
	ChannelID []byte
}

// Service persists, lists and retrieves a node's objects.
type Service struct {
	store ObjectStore
	now   func() time.Time
}

// NewService returns a Service over store.
func NewService(store ObjectStore, now func() time.Time) *Service {
	return &Service{store: store, now: now}
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
}

// PersistResult is the reply to an accepted persist.
type PersistResult struct {
	// Signature is the server's signature over the request's Challenge: the
	// apps check it against the server key they pinned.
	Signature string
}

// Persist verifies that the node signed the SHA-256 of the body, stores the
// body as the object's latest bytes, and signs the client's challenge.
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
	if err := s.store.PutObject(ctx, key, req.Body, sum, s.now()); err != nil {
		return PersistResult{}, err
	}
	return PersistResult{Signature: lnsig.SignBackup(req.Tenant.ServerKey, req.Challenge)}, nil
}

// Retrieve returns the latest bytes of one of node's objects.
func (s *Service) Retrieve(ctx context.Context, tenant *Tenant, node NodeKey, network, label, channelID string) ([]byte, error) {
	key, err := ParseObjectKey(tenant, node, network, label, channelID)
	if err != nil {
		return nil, err
	}
	payload, err := s.store.GetObject(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(ENOTFOUND, "backup not found")
	}
	return payload, err
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
	keys, err := s.store.ListObjectKeys(ctx, tenant.ID, node, net)
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
