package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/lnsig"
)

// Keys from shared/testdata/signmessage-vectors.json.
const (
	nodeSecretHex = "0101010101010101010101010101010101010101010101010101010101010101"
	nodePubHex    = "031b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f"
	serverPubHex  = "024d4b6cd1361032ca9bd2aeb9d900aa4d45d9ead80ac9423374c451a7254d0766"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	secret, err := hex.DecodeString(nodeSecretHex)
	require.NoError(t, err)
	return Config{
		BaseURL:      "http://127.0.0.1:3003",
		Network:      "regtest",
		NodeSecret:   secret,
		ServerPubKey: serverPubHex,
		MaxAttempts:  10,
	}
}

func newTestClient(t *testing.T, mutate func(*Config)) *Client {
	t.Helper()
	cfg := testConfig(t)
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	return c
}

func TestAndroidTimestamp(t *testing.T) {
	t.Parallel()
	require.Equal(t, "1764169200123", AndroidTimestamps.Format(time.UnixMilli(1764169200123)))
	// Sub-millisecond time is dropped, as System.currentTimeMillis() has none.
	require.Equal(t, "1764169200123", AndroidTimestamps.Format(time.Unix(1764169200, 123999999)))
	require.Equal(t, "1700000000000", AndroidTimestamps.Format(time.Unix(1700000000, 0)))
}

func TestIOSTimestamp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sec, nsec int64
		want      string
	}{
		{1764169200, 123456000, "1764169200.123456"},
		{1700000000, 123456000, "1700000000.123456"},
		// Swift always prints a fraction for a Double.
		{1764169200, 0, "1764169200.0"},
		{1764169200, 500000000, "1764169200.5"},
		{1764169200, 250000000, "1764169200.25"},
		// Foundation reads the clock in microseconds.
		{1764169200, 999, "1764169200.0"},
		{1764169200, 999999999, "1764169200.999999"},
		// Rounding through the 2001 reference date leaves a 7th digit, as
		// on a real device.
		{1764169200, 100000, "1764169200.0001001"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, IOSTimestamps.Format(time.Unix(tc.sec, tc.nsec)), "%d.%09d", tc.sec, tc.nsec)
	}
}

func TestIOSTimestampShape(t *testing.T) {
	t.Parallel()
	start := time.Unix(1764169200, 0)
	for i := range 20000 {
		// Step by a prime number of microseconds to hit many fractions.
		tm := start.Add(time.Duration(i) * 7919 * time.Microsecond)
		s := IOSTimestamps.Format(tm)
		whole, frac, ok := strings.Cut(s, ".")
		require.True(t, ok, s)
		require.Equal(t, strconv.FormatInt(tm.Unix(), 10), whole, s)
		require.NotEmpty(t, frac, s)
		require.LessOrEqual(t, len(frac), 7, s)
		require.NotContains(t, s, "e", "no exponent form")
		f, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		require.LessOrEqual(t, math.Abs(f-float64(tm.UnixMicro())/1e6), 5e-7, s)
	}
}

func TestTimestampStyleString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "android", AndroidTimestamps.String())
	require.Equal(t, "ios", IOSTimestamps.String())
}

func TestPersistChallenge(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764169200, 123456000)

	android := PersistChallenge(nodePubHex, AndroidTimestamps, now)
	require.Len(t, android, 64)
	require.Equal(t, strings.ToLower(android), android)
	// Independently: sha256 of the UTF-8 text pubkeyhex + ms digits.
	require.Equal(t, sha256Hex(nodePubHex+"1764169200123"), android)

	ios := PersistChallenge(nodePubHex, IOSTimestamps, now)
	require.Equal(t, sha256Hex(nodePubHex+"1764169200.123456"), ios)
	require.NotEqual(t, android, ios)
}

func TestChallengeBody(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764169200, 123456000)
	for _, tc := range []struct {
		style       TimestampStyle
		rawTS, text string
	}{
		{AndroidTimestamps, `1764169200123`, "1764169200123"},
		{IOSTimestamps, `"1764169200.123456"`, "1764169200.123456"},
	} {
		t.Run(tc.style.String(), func(t *testing.T) {
			t.Parallel()
			c := newTestClient(t, func(cfg *Config) {
				cfg.Timestamps = tc.style
				cfg.Now = func() time.Time { return now }
			})
			body, err := c.challengeBody()
			require.NoError(t, err)
			var parsed struct {
				Timestamp json.RawMessage `json:"timestamp"`
				Signature string          `json:"signature"`
			}
			require.NoError(t, json.Unmarshal(body, &parsed))
			require.Equal(t, tc.rawTS, string(parsed.Timestamp))
			// The signed text is the timestamp exactly as it appears in the JSON.
			require.NoError(t, lnsig.VerifyBackupHex(nodePubHex, tc.text, parsed.Signature))
		})
	}
}

func TestEndpoint(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(cfg *Config) { cfg.BaseURL = "http://host/t/acme/" })
	require.Equal(t, "http://host/t/acme/v1/persist?network=regtest&label=channel_manager",
		c.endpoint("persist", "channel_manager", ""))
	id := strings.Repeat("ab", 32)
	require.Equal(t, "http://host/t/acme/v1/retrieve?network=regtest&label=channel_monitor&channelId="+id,
		c.endpoint("retrieve", "channel_monitor", id))
	require.Equal(t, "http://host/t/acme/v1/auth/challenge?network=regtest", c.endpoint("auth/challenge", "", ""))
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	require.Equal(t, nodePubHex, c.PublicKeyHex())
	require.Equal(t, 10, c.attempts)
	require.Equal(t, 1, newTestClient(t, func(cfg *Config) { cfg.MaxAttempts = 0 }).attempts)
	require.NotNil(t, c.http)
	require.NotNil(t, c.now)
	// An upper-case pinned key is the same key.
	newTestClient(t, func(cfg *Config) { cfg.ServerPubKey = strings.ToUpper(serverPubHex) })

	order := btcec.S256().N.Bytes()
	bad := map[string]func(*Config){
		"no base url":       func(c *Config) { c.BaseURL = "" },
		"base url scheme":   func(c *Config) { c.BaseURL = "ftp://host" },
		"base url query":    func(c *Config) { c.BaseURL = "http://host/?x=1" },
		"network":           func(c *Config) { c.Network = "mainnet" },
		"short secret":      func(c *Config) { c.NodeSecret = c.NodeSecret[:31] },
		"zero secret":       func(c *Config) { c.NodeSecret = make([]byte, 32) },
		"secret over order": func(c *Config) { c.NodeSecret = order },
		"server key length": func(c *Config) { c.ServerPubKey = serverPubHex[:64] },
		"server key hex":    func(c *Config) { c.ServerPubKey = "zz" + serverPubHex[2:] },
		"server key point":  func(c *Config) { c.ServerPubKey = "05" + serverPubHex[2:] },
		"timestamp style":   func(c *Config) { c.Timestamps = 7 },
	}
	for name, mutate := range bad {
		cfg := testConfig(t)
		mutate(&cfg)
		_, err := New(cfg)
		require.Error(t, err, name)
	}
}

func TestNewCopiesSecret(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	c, err := New(cfg)
	require.NoError(t, err)
	cfg.NodeSecret[0] ^= 0xff
	blob, err := Encrypt(c.secret, []byte("x"))
	require.NoError(t, err)
	orig, _ := hex.DecodeString(nodeSecretHex)
	_, err = Decrypt(orig, blob)
	require.NoError(t, err, "the client must keep its own copy of the secret")
}

func TestStatusErrorMessage(t *testing.T) {
	t.Parallel()
	require.Equal(t, "backup server: status 409: replay", (&StatusError{Status: 409, Message: "replay"}).Error())
	require.Equal(t, "backup server: status 502", (&StatusError{Status: 502}).Error())
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	require.Equal(t, 100*time.Millisecond, backoff(1))
	require.Equal(t, 900*time.Millisecond, backoff(9))
	require.Equal(t, backoffMax, backoff(1000))
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
