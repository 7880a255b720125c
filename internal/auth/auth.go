// Package auth issues login challenges and read sessions: a node proves its
// key by signing a recent timestamp, then a server challenge, and gets a
// bearer token for list and retrieve. All state is in the Store, so any
// replica can serve any step.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/cache"
)

// Lifetimes fixed by the protocol.
const (
	ChallengeTTL = 60 * time.Second
	SessionTTL   = 5 * time.Minute
	// MaxLiveChallenges bounds the challenges one node may hold at once (two
	// devices restoring, retries), and so the signatures a response checks.
	MaxLiveChallenges = 5
)

// Store keeps challenges and sessions.
type Store interface {
	CreateChallenge(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, challenge []byte, now, expires time.Time, keepExisting int) error
	LiveChallenges(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, now time.Time) ([][]byte, error)
	// CreateSession consumes the challenge and stores the session in one
	// step; backup.ErrNotFound when the challenge is no longer live.
	CreateSession(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, challenge, tokenHash []byte, now, expires time.Time) error
	// SessionNode returns the node of a live session and its expiry;
	// backup.ErrNotFound when there is none.
	SessionNode(ctx context.Context, tenant backup.TenantID, tokenHash []byte, now time.Time) (backup.NodeKey, time.Time, error)
}

// Service implements the challenge/response login and token checks.
type Service struct {
	store  Store
	now    func() time.Time
	window time.Duration
	// sessions holds live sessions by token hash, each until cacheTTL ends
	// or the session expires, whichever is first: a restore reads some 20
	// objects with one token, and a session ends only by expiring.
	sessions *cache.Cache[sessionKey, backup.NodeKey]
}

type sessionKey struct {
	tenant    backup.TenantID
	tokenHash [sha256.Size]byte
}

// cachedSessions bounds the session cache: about 100 bytes each.
const cachedSessions = 100_000

// NewService returns a Service that accepts signed timestamps within
// ±window of now() and holds what it read of a session for at most
// cacheTTL (zero: it reads the session on every request).
func NewService(store Store, now func() time.Time, window, cacheTTL time.Duration) *Service {
	return &Service{store: store, now: now, window: window, sessions: cache.New[sessionKey, backup.NodeKey](cacheTTL, cachedSessions)}
}

// IssueChallenge checks the node's signature over a recent timestamp and
// returns a new single-use challenge (64 hex characters).
func (s *Service) IssueChallenge(ctx context.Context, req backup.ChallengeRequest) (string, error) {
	node, err := backup.ParseNodeKey(req.PublicKey)
	if err != nil {
		return "", err
	}
	ts, err := ParseTimestamp(req.Timestamp)
	if err != nil {
		return "", err
	}
	if req.Signature == "" {
		return "", backup.Errorf(backup.EINVALID, "missing signature")
	}
	now := s.now()
	if d := ts.Time.Sub(now); d > s.window || d < -s.window {
		return "", backup.Errorf(backup.EUNAUTHORIZED, "timestamp is too far from the server's clock")
	}
	if err := backup.VerifyNodeSignature(node, ts.Text, req.Signature); err != nil {
		return "", err
	}
	challenge := randomBytes()
	if err := s.store.CreateChallenge(ctx, req.Tenant, node, challenge, now, now.Add(ChallengeTTL), MaxLiveChallenges-1); err != nil {
		return "", err
	}
	return hex.EncodeToString(challenge), nil
}

// Respond finds the node's live challenge that the signature signs, consumes
// it and opens a session.
func (s *Service) Respond(ctx context.Context, tenant backup.TenantID, publicKey, signature string) (backup.Session, error) {
	node, err := backup.ParseNodeKey(publicKey)
	if err != nil {
		return backup.Session{}, err
	}
	if signature == "" {
		return backup.Session{}, backup.Errorf(backup.EINVALID, "missing signature")
	}
	now := s.now()
	live, err := s.store.LiveChallenges(ctx, tenant, node, now)
	if err != nil {
		return backup.Session{}, err
	}
	if len(live) == 0 {
		return backup.Session{}, backup.Errorf(backup.EINVALID, "no live challenge for this key: request one from auth/challenge")
	}
	var signed []byte
	for _, c := range live {
		if backup.VerifyNodeSignature(node, hex.EncodeToString(c), signature) == nil {
			signed = c
			break
		}
	}
	if signed == nil {
		return backup.Session{}, backup.Errorf(backup.EUNAUTHORIZED, "invalid signature")
	}

	token := randomBytes()
	sess := backup.Session{Token: hex.EncodeToString(token), Expires: now.Add(SessionTTL)}
	tokenHash := hashToken(token)
	err = s.store.CreateSession(ctx, tenant, node, signed, tokenHash[:], now, sess.Expires)
	if errors.Is(err, backup.ErrNotFound) {
		return backup.Session{}, backup.Errorf(backup.EUNAUTHORIZED, "challenge already used or expired")
	}
	if err != nil {
		return backup.Session{}, err
	}
	return sess, nil
}

// Authenticate returns the node of a live session from an Authorization
// header: the bare token, as the apps send it, or "Bearer <token>".
func (s *Service) Authenticate(ctx context.Context, tenant backup.TenantID, authorization string) (backup.NodeKey, error) {
	tok := strings.TrimSpace(authorization)
	if len(tok) > 7 && strings.EqualFold(tok[:7], "bearer ") {
		tok = strings.TrimSpace(tok[7:])
	}
	if tok == "" {
		return backup.NodeKey{}, backup.Errorf(backup.EUNAUTHORIZED, "missing Authorization token")
	}
	raw, err := hex.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		return backup.NodeKey{}, backup.Errorf(backup.EUNAUTHORIZED, "invalid or expired token")
	}
	now, key := s.now(), sessionKey{tenant: tenant, tokenHash: hashToken(raw)}
	if node, ok := s.sessions.Get(key, now); ok {
		return node, nil
	}
	node, expires, err := s.store.SessionNode(ctx, tenant, key.tokenHash[:], now)
	if errors.Is(err, backup.ErrNotFound) {
		return backup.NodeKey{}, backup.Errorf(backup.EUNAUTHORIZED, "invalid or expired token")
	}
	if err != nil {
		return backup.NodeKey{}, err
	}
	s.sessions.Put(key, node, now, expires)
	return node, nil
}

// hashToken is what the database keeps of a token: a leaked table yields no
// usable token.
func hashToken(token []byte) [sha256.Size]byte { return sha256.Sum256(token) }

func randomBytes() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}
