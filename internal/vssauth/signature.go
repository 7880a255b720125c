package vssauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

// signingSalt is the 64-byte constant that starts every signed message
// (SIGNING_CONSTANT in vss-server's auth-impls/src/signature.rs and
// vss-client's src/headers/sigs_auth.rs), so the signature cannot be
// replayed as one over some other message of the same key.
const signingSalt = "VSS Signature Authorizer Signing Salt Constant.................."

const (
	pubKeyHexLen = 33 * 2
	sigHexLen    = 64 * 2
	// 2^64-1 has 20 digits; the reference parses the time as a u64.
	maxTimeDigits = 20
	// maxUnixSeconds (9999-12-31T23:59:59Z) keeps time.Unix and Sub far
	// from overflow; no window reaches it.
	maxUnixSeconds = 253402300799
)

// DefaultSignatureWindow bounds |now - header time| when NewSignature is
// given no window. The reference allows 24 hours (its doc comment says one
// hour); the real client signs a fresh header for every request, so what
// this must absorb is the phone's clock error, and an hour is three orders
// of magnitude above that of a phone on network time. docs/vss-auth.md has
// the reasoning.
const DefaultSignatureWindow = time.Hour

// DefaultReplaySlack is how much older than the newest header a key has
// used a header may be when a ReplayGuard is configured. It covers the
// real client's reordering (concurrent requests, each with a header signed
// before sending, bounded by vss-client's 10 s request timeout) many times
// over.
const DefaultReplaySlack = 2 * time.Minute

// SignedHeader is a syntactically valid signature Authorization header.
type SignedHeader struct {
	PubKey    [33]byte // compressed secp256k1 public key
	Signature [64]byte // compact ECDSA signature, r || s
	Time      uint64   // unix seconds the client signed
	TimeText  string   // the time exactly as sent: it is what was signed
}

// ParseSignatureHeader splits an Authorization header of the signature
// scheme: hex(33-byte compressed public key) || hex(64-byte compact
// signature) || decimal unix seconds. It checks syntax only; refusals wrap
// ErrUnauthorized. Hex of either case is accepted (the reference's decoder
// does); the time must be 1 to 20 ASCII digits that fit in 64 bits.
func ParseSignatureHeader(v string) (SignedHeader, error) {
	var sh SignedHeader
	if len(v) <= pubKeyHexLen+sigHexLen {
		return sh, refuse("authorization header is too short for a public key, a signature and a time")
	}
	if len(v) > pubKeyHexLen+sigHexLen+maxTimeDigits {
		return sh, refuse("authorization header is too long")
	}
	if _, err := hex.Decode(sh.PubKey[:], []byte(v[:pubKeyHexLen])); err != nil {
		return sh, refuse("authorization header public key is not hex")
	}
	if _, err := hex.Decode(sh.Signature[:], []byte(v[pubKeyHexLen:pubKeyHexLen+sigHexLen])); err != nil {
		return sh, refuse("authorization header signature is not hex")
	}
	sh.TimeText = v[pubKeyHexLen+sigHexLen:]
	// Base 10 admits digits only: no sign, space or underscore.
	t, err := strconv.ParseUint(sh.TimeText, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return sh, refuse("authorization header time does not fit in 64 bits")
	}
	if err != nil {
		return sh, refuse("authorization header time is not a decimal number")
	}
	sh.Time = t
	return sh, nil
}

// signatureDigest is the hash the client signs: SHA-256(salt || compressed
// public key || the time as ASCII decimal).
func signatureDigest(pubKey []byte, timeText string) [32]byte {
	h := sha256.New()
	h.Write([]byte(signingSalt))
	h.Write(pubKey)
	h.Write([]byte(timeText))
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// verify checks the signature of a parsed header over its own key and
// time. Like libsecp256k1, which the reference uses, it refuses high-S
// signatures (the real client only makes low-S ones), and r or s that are
// zero or not below the group order.
func (sh SignedHeader) verify() error {
	pub, err := btcec.ParsePubKey(sh.PubKey[:])
	if err != nil {
		return refuse("authorization header public key is not a compressed secp256k1 point")
	}
	var r, s btcec.ModNScalar
	// SetByteSlice would reduce r or s mod n; the reference's parser refuses
	// them instead. Zero r or s fails Verify.
	if overflow := r.SetByteSlice(sh.Signature[:32]); overflow {
		return refuse("authorization header signature is malformed")
	}
	if overflow := s.SetByteSlice(sh.Signature[32:]); overflow {
		return refuse("authorization header signature is malformed")
	}
	if s.IsOverHalfOrder() {
		return refuse("authorization header signature is not in low-S form")
	}
	d := signatureDigest(sh.PubKey[:], sh.TimeText)
	if !ecdsa.NewSignature(&r, &s).Verify(d[:], pub) {
		return refuse("signature was invalid")
	}
	return nil
}

// UserToken is the user token of a header's key: its compressed public key
// in lowercase hex. The reference answers the hex as the client sent it;
// vss-client always sends lowercase, so the two agree for the real client,
// and lowercasing keeps one key to one user token (mixed case would give a
// key 2^66 names, each with its own quota).
func (sh SignedHeader) UserToken() string { return hex.EncodeToString(sh.PubKey[:]) }

// ReplayGuard remembers, per user token, the newest header time a key has
// used, so that a captured header stops working once its owner has used a
// newer one. It is shared by every replica (an implementation keeps the mark
// in PostgreSQL). The real client signs a fresh header per request but the
// signature is deterministic (RFC 6979), so several requests in one second,
// concurrent requests and quick retries legitimately carry the identical
// header: a guard can refuse old headers, never repeated ones.
type ReplayGuard interface {
	// Advance atomically: when a mark is recorded for userToken and it is
	// later than ceiling, it changes nothing and returns false; otherwise it
	// sets the mark to the later of the recorded mark and mark and returns
	// true. In SQL, one statement:
	//   INSERT ... VALUES (user_token, mark) ON CONFLICT (user_token) DO UPDATE
	//   SET mark = GREATEST(t.mark, EXCLUDED.mark) WHERE t.mark <= ceiling RETURNING true
	// (no row returned: refused). Times are whole seconds.
	Advance(ctx context.Context, userToken string, ceiling, mark time.Time) (admitted bool, err error)
}

type signature struct {
	window   time.Duration
	now      func() time.Time
	guard    ReplayGuard
	slack    time.Duration
	verified *verifiedHeaders
}

// verifiedHeadersKept is how many verified headers an authorizer remembers
// per generation (two generations; about 300 bytes each): more than the
// distinct headers a replica sees in a second at thousands of users.
const verifiedHeadersKept = 4096

// NewSignature returns the Authorizer of ldk-node's default scheme
// (vss-client's SigsAuthProvider): the Authorization header proves
// knowledge of the key it names, signed at a time within window of now
// (DefaultSignatureWindow when window <= 0). The user token is the key's
// lowercase hex.
//
// What stays replayable: the header is bound to neither the request nor
// the server, so anyone who captures one (a TLS-terminating proxy's log, a
// compromised intermediary) can send any request as that key, to any server
// using this scheme, until the header's time is window away from now.
// NewSignatureWithReplayGuard narrows that for keys that keep making
// requests.
func NewSignature(window time.Duration, now func() time.Time) Authorizer {
	if window <= 0 {
		window = DefaultSignatureWindow
	}
	return &signature{window: window, now: now, verified: newVerifiedHeaders(verifiedHeadersKept)}
}

// NewSignatureWithReplayGuard is NewSignature that also refuses a header
// whose time is more than slack (DefaultReplaySlack when slack <= 0) older
// than the newest header time the key has used, as recorded by guard. The
// recorded time is never later than the server's clock, so a client whose
// clock was ahead and is set back is only refused if it ends up more than
// slack behind the server's clock.
//
// What stays replayable: a captured header keeps working until its owner
// uses a header more than slack newer, or until it leaves the window,
// whichever is first. For a wallet that syncs every few minutes that is
// about slack after capture; for one that goes offline right after, it is
// still the whole window. Headers are not bound to a request, so within
// that time a replay may make any request.
func NewSignatureWithReplayGuard(window time.Duration, now func() time.Time, guard ReplayGuard, slack time.Duration) Authorizer {
	a := NewSignature(window, now).(*signature)
	if slack <= 0 {
		slack = DefaultReplaySlack
	}
	a.guard, a.slack = guard, slack
	return a
}

func (a *signature) Authorize(ctx context.Context, h http.Header) (string, error) {
	v, err := authorizationHeader(h)
	if err != nil {
		return "", err
	}
	sh, seen := a.verified.get(v)
	if !seen {
		if sh, err = ParseSignatureHeader(v); err != nil {
			return "", err
		}
	}
	now := a.now()
	if sh.Time > maxUnixSeconds {
		return "", refuse("signature time is too far from now")
	}
	signed := time.Unix(int64(sh.Time), 0)
	if age := now.Sub(signed); age > a.window {
		return "", refuse("signature time is %s in the past; at most %s is allowed", age.Truncate(time.Second), a.window)
	}
	if ahead := signed.Sub(now); ahead > a.window {
		return "", refuse("signature time is %s in the future; at most %s is allowed", ahead.Truncate(time.Second), a.window)
	}
	// The signature is checked before the guard, so only a holder of the
	// key can move its mark.
	if !seen {
		if err := sh.verify(); err != nil {
			return "", err
		}
		a.verified.add(v, sh)
	}
	token := sh.UserToken()
	if a.guard != nil {
		mark := signed
		if n := now.Truncate(time.Second); n.Before(mark) {
			mark = n
		}
		ok, err := a.guard.Advance(ctx, token, signed.Add(a.slack), mark)
		if err != nil {
			return "", fmt.Errorf("vssauth: replay guard: %w", err)
		}
		if !ok {
			return "", refuse("signature time is more than %s older than a header this key already used; sign a fresh one", a.slack)
		}
	}
	return token, nil
}

// SignatureHeader returns the Authorization header value of the signature
// scheme for priv at now, as vss-client's SigsAuthProvider makes it:
// deterministic (RFC 6979) and low-S.
func SignatureHeader(priv *btcec.PrivateKey, now time.Time) string {
	pub := priv.PubKey().SerializeCompressed()
	timeText := strconv.FormatInt(now.Unix(), 10)
	d := signatureDigest(pub, timeText)
	// SignCompact is [recovery byte || r || s]; the header carries r || s.
	compact := ecdsa.SignCompact(priv, d[:], true)
	return hex.EncodeToString(pub) + hex.EncodeToString(compact[1:]) + timeText
}
