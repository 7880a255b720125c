package vssauth

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/stretchr/testify/require"
)

type signatureVectors struct {
	Salt          string `json:"salt"`
	Now           int64  `json:"now"`
	WindowSeconds int64  `json:"window_seconds"`
	Valid         []struct {
		Key       string `json:"key"`
		PrivKey   string `json:"privkey"`
		PubKey    string `json:"pubkey"`
		Time      string `json:"time"`
		Digest    string `json:"digest"`
		Signature string `json:"signature"`
		Header    string `json:"header"`
	} `json:"valid"`
	Invalid []struct {
		Reason string `json:"reason"`
		Header string `json:"header"`
	} `json:"invalid"`
}

func readSignatureVectors(t testing.TB) signatureVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/signature-vectors.json")
	require.NoError(t, err)
	var v signatureVectors
	require.NoError(t, json.Unmarshal(raw, &v))
	require.NotEmpty(t, v.Valid)
	require.NotEmpty(t, v.Invalid)
	return v
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func authHeader(values ...string) http.Header {
	h := http.Header{}
	for _, v := range values {
		h.Add("Authorization", v)
	}
	return h
}

// requireRefused checks the contract every refusal keeps: no user token and
// an error wrapping ErrUnauthorized.
func requireRefused(t *testing.T, token string, err error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.ErrorIs(t, err, ErrUnauthorized, msgAndArgs...)
	require.Empty(t, token, msgAndArgs...)
}

// The vectors come from @noble/secp256k1 and Node's SHA-256
// (testdata/gen): the verifier must accept and refuse what an independent
// implementation says, and the signer must produce its headers byte for byte
// (both sign deterministically with RFC 6979, as libsecp256k1 does).
func TestSignatureVectors(t *testing.T) {
	t.Parallel()
	v := readSignatureVectors(t)
	require.Equal(t, v.Salt, signingSalt)
	require.Len(t, signingSalt, 64)
	now := time.Unix(v.Now, 0)
	a := NewSignature(time.Duration(v.WindowSeconds)*time.Second, fixedClock(now))
	for _, vec := range v.Valid {
		pub, err := hex.DecodeString(vec.PubKey)
		require.NoError(t, err)
		d := signatureDigest(pub, vec.Time)
		require.Equal(t, vec.Digest, hex.EncodeToString(d[:]), "digest of %s at %s", vec.Key, vec.Time)

		token, err := a.Authorize(context.Background(), authHeader(vec.Header))
		require.NoError(t, err, "%s at %s", vec.Key, vec.Time)
		require.Equal(t, vec.PubKey, token)

		privBytes, err := hex.DecodeString(vec.PrivKey)
		require.NoError(t, err)
		priv, _ := btcec.PrivKeyFromBytes(privBytes)
		unix, err := strconv.ParseInt(vec.Time, 10, 64)
		require.NoError(t, err)
		require.Equal(t, vec.Header, SignatureHeader(priv, time.Unix(unix, 0)), "our signer, %s at %s", vec.Key, vec.Time)
	}
	for _, vec := range v.Invalid {
		token, err := a.Authorize(context.Background(), authHeader(vec.Header))
		requireRefused(t, token, err, vec.Reason)
	}
}

func testKey(t testing.TB, b byte) *btcec.PrivateKey {
	t.Helper()
	priv, _ := btcec.PrivKeyFromBytes(append(make([]byte, 31), b))
	return priv
}

func TestSignatureAccepts(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764460800, 500_000_000)
	const window = 10 * time.Minute
	a := NewSignature(window, fixedClock(now))
	priv := testKey(t, 7)
	want := hex.EncodeToString(priv.PubKey().SerializeCompressed())
	for name, header := range map[string]string{
		"now":                  SignatureHeader(priv, now),
		"window old":           SignatureHeader(priv, now.Add(-window+time.Second)),
		"window ahead":         SignatureHeader(priv, now.Add(window)),
		"uppercase hex":        strings.ToUpper(SignatureHeader(priv, now)),
		"leading zero in time": withTime(t, priv, "0"+itoa(now.Unix())),
		"same header repeated": SignatureHeader(priv, now),
	} {
		token, err := a.Authorize(context.Background(), authHeader(header))
		require.NoError(t, err, name)
		require.Equal(t, want, token, name)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// withTime signs timeText as given (the reference signs the time string as
// sent, so a leading zero is part of the message).
func withTime(t testing.TB, priv *btcec.PrivateKey, timeText string) string {
	t.Helper()
	pub := priv.PubKey().SerializeCompressed()
	d := signatureDigest(pub, timeText)
	compact := ecdsa.SignCompact(priv, d[:], true) // [recovery byte || r || s]
	return hex.EncodeToString(pub) + hex.EncodeToString(compact[1:]) + timeText
}

func TestSignatureRefusals(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764460800, 0)
	const window = 10 * time.Minute
	a := NewSignature(window, fixedClock(now))
	priv, other := testKey(t, 7), testKey(t, 8)
	good := SignatureHeader(priv, now)
	pubHex, sigHex, timeText := good[:66], good[66:194], good[194:]

	sig, err := hex.DecodeString(sigHex)
	require.NoError(t, err)
	n := btcec.S256().N
	s := new(big.Int).SetBytes(sig[32:])
	highS := make([]byte, 32)
	new(big.Int).Sub(n, s).FillBytes(highS)
	flipped := []byte(sigHex)
	flipped[10] ^= 1 // '0'..'9' and 'a'..'f' stay hex under ^1
	var nBytes [32]byte
	n.FillBytes(nBytes[:])
	// An x with no point on the curve: x = 5 (5^3 + 7 = 132 is not a square mod p).
	offCurve := "02" + strings.Repeat("0", 62) + "05"

	cases := map[string][]string{
		"no header":                   nil,
		"two headers":                 {good, good},
		"empty":                       {""},
		"public key only":             {pubHex},
		"truncated signature":         {pubHex + sigHex[:127]},
		"no time":                     {pubHex + sigHex},
		"truncated key":               {good[1:]},
		"time too long":               {pubHex + sigHex + "123456789012345678901"},
		"time overflows 64 bits":      {pubHex + sigHex + "18446744073709551616"},
		"time beyond year 9999":       {pubHex + sigHex + "99999999999999999999"},
		"time with plus sign":         {pubHex + sigHex + "+" + timeText[1:]},
		"time negative":               {pubHex + sigHex + "-1"},
		"time with space":             {pubHex + sigHex + " " + timeText[1:]},
		"time hex":                    {pubHex + sigHex + "0x" + timeText[2:]},
		"time non-ASCII":              {pubHex + sigHex + "１764460800"},
		"key not hex":                 {"g" + good[1:]},
		"signature not hex":           {pubHex + "z" + sigHex[1:] + timeText},
		"key uncompressed prefix":     {"04" + good[2:]},
		"key bad prefix":              {"05" + good[2:]},
		"key off the curve":           {offCurve + sigHex + timeText},
		"wrong key":                   {hex.EncodeToString(other.PubKey().SerializeCompressed()) + sigHex + timeText},
		"wrong signature":             {pubHex + string(flipped) + timeText},
		"high-S":                      {pubHex + sigHex[:64] + hex.EncodeToString(highS) + timeText},
		"r zero":                      {pubHex + strings.Repeat("0", 64) + sigHex[64:] + timeText},
		"s zero":                      {pubHex + sigHex[:64] + strings.Repeat("0", 64) + timeText},
		"r is n":                      {pubHex + hex.EncodeToString(nBytes[:]) + sigHex[64:] + timeText},
		"signed another time":         {pubHex + sigHex + itoa(now.Unix()+1)},
		"expired":                     {SignatureHeader(priv, now.Add(-window-time.Second))},
		"future-dated":                {SignatureHeader(priv, now.Add(window+time.Second))},
		"time zero":                   {withTime(t, priv, "0")},
		"bearer token":                {"Bearer " + good},
		"trailing garbage after time": {good + "x"},
	}
	for name, values := range cases {
		token, err := a.Authorize(context.Background(), authHeader(values...))
		requireRefused(t, token, err, name)
	}
}

// memoryGuard keeps ReplayGuard's contract in a map, to test how the
// authorizer uses a guard; the shared implementation lives in PostgreSQL.
type memoryGuard struct {
	mu    sync.Mutex
	marks map[string]time.Time
	err   error
}

func (g *memoryGuard) Advance(_ context.Context, userToken string, ceiling, mark time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return false, g.err
	}
	if g.marks == nil {
		g.marks = map[string]time.Time{}
	}
	if old, ok := g.marks[userToken]; ok {
		if old.After(ceiling) {
			return false, nil
		}
		if old.After(mark) {
			mark = old
		}
	}
	g.marks[userToken] = mark
	return true, nil
}

type steppingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *steppingClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *steppingClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestSignatureReplayGuard(t *testing.T) {
	t.Parallel()
	start := time.Unix(1764460800, 0)
	const window, slack = time.Hour, 2 * time.Minute
	setup := func() (*steppingClock, *memoryGuard, Authorizer) {
		clock := &steppingClock{now: start}
		guard := &memoryGuard{}
		return clock, guard, NewSignatureWithReplayGuard(window, clock.Now, guard, slack)
	}
	priv := testKey(t, 9)
	authorize := func(a Authorizer, header string) (string, error) {
		return a.Authorize(context.Background(), authHeader(header))
	}

	t.Run("identical headers pass: several requests in one second, retries", func(t *testing.T) {
		_, _, a := setup()
		h := SignatureHeader(priv, start)
		for range 5 {
			_, err := authorize(a, h)
			require.NoError(t, err)
		}
	})
	t.Run("a captured header dies once its owner used one more than slack newer", func(t *testing.T) {
		clock, _, a := setup()
		captured := SignatureHeader(priv, start)
		_, err := authorize(a, captured)
		require.NoError(t, err)
		later := start.Add(slack + time.Second)
		clock.Set(later)
		_, err = authorize(a, SignatureHeader(priv, later))
		require.NoError(t, err)
		token, err := authorize(a, captured)
		requireRefused(t, token, err)
	})
	t.Run("reordered requests within slack pass", func(t *testing.T) {
		clock, _, a := setup()
		clock.Set(start.Add(slack))
		_, err := authorize(a, SignatureHeader(priv, start.Add(slack)))
		require.NoError(t, err)
		_, err = authorize(a, SignatureHeader(priv, start))
		require.NoError(t, err)
	})
	t.Run("a client clock set back from ahead is not locked out", func(t *testing.T) {
		_, _, a := setup()
		// Ten minutes fast, within the window: the mark is clamped to the
		// server's now, not the header's time.
		_, err := authorize(a, SignatureHeader(priv, start.Add(10*time.Minute)))
		require.NoError(t, err)
		_, err = authorize(a, SignatureHeader(priv, start))
		require.NoError(t, err)
	})
	t.Run("a bad signature does not move the mark", func(t *testing.T) {
		_, guard, a := setup()
		forged := SignatureHeader(testKey(t, 10), start.Add(30*time.Minute))
		forged = hex.EncodeToString(priv.PubKey().SerializeCompressed()) + forged[66:]
		token, err := authorize(a, forged)
		requireRefused(t, token, err)
		require.Empty(t, guard.marks)
		_, err = authorize(a, SignatureHeader(priv, start))
		require.NoError(t, err)
	})
	t.Run("marks are per key", func(t *testing.T) {
		clock, _, a := setup()
		clock.Set(start.Add(10 * time.Minute))
		_, err := authorize(a, SignatureHeader(testKey(t, 11), start.Add(10*time.Minute)))
		require.NoError(t, err)
		_, err = authorize(a, SignatureHeader(priv, start))
		require.NoError(t, err)
	})
	t.Run("a guard failure is a server fault, not a refusal", func(t *testing.T) {
		_, guard, a := setup()
		guard.err = errors.New("database down")
		token, err := authorize(a, SignatureHeader(priv, start))
		require.Error(t, err)
		require.NotErrorIs(t, err, ErrUnauthorized)
		require.Empty(t, token)
	})
}

func TestNone(t *testing.T) {
	t.Parallel()
	for _, h := range []http.Header{nil, {}, authHeader("anything")} {
		token, err := NewNone().Authorize(context.Background(), h)
		require.NoError(t, err)
		require.Equal(t, "unauth-user", token)
	}
}

func TestNewSignatureDefaultWindow(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764460800, 0)
	a := NewSignature(0, fixedClock(now))
	priv := testKey(t, 7)
	_, err := a.Authorize(context.Background(), authHeader(SignatureHeader(priv, now.Add(-DefaultSignatureWindow))))
	require.NoError(t, err)
	token, err := a.Authorize(context.Background(), authHeader(SignatureHeader(priv, now.Add(-DefaultSignatureWindow-time.Second))))
	requireRefused(t, token, err)
}
