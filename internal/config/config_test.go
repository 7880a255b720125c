package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnvOverlaysDefaults(t *testing.T) {
	t.Parallel()
	secret, public, err := GenerateKeyPair()
	require.NoError(t, err)
	cfg, err := Default().FromEnv(env(map[string]string{
		"HOST": "127.0.0.1", "PORT": "4000", "SECRET_KEY": secret, "PUBLIC_KEY": strings.ToUpper(public),
		"DATABASE_URL": "postgres://x", "MAX_BODY_BYTES": "1024", "TIMESTAMP_WINDOW": "1h", "MIGRATE_ON_START": "false",
	}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:4000", cfg.Addr())
	require.EqualValues(t, 1024, cfg.MaxBodyBytes)
	require.Equal(t, time.Hour, cfg.TimestampWindow)
	require.False(t, cfg.MigrateOnStart)
	require.NoError(t, cfg.Validate(), "PUBLIC_KEY compares case-insensitively")

	_, err = Default().FromEnv(env(map[string]string{"PORT": "x", "READ_TIMEOUT": "5"}))
	require.ErrorContains(t, err, "PORT")
	require.ErrorContains(t, err, "READ_TIMEOUT")
}

func TestValidateKeyPair(t *testing.T) {
	t.Parallel()
	secret, public, err := GenerateKeyPair()
	require.NoError(t, err)
	_, otherPublic, err := GenerateKeyPair()
	require.NoError(t, err)
	base := Default()
	base.DatabaseURL = "postgres://x"

	for name, tc := range map[string]struct{ secret, public, want string }{
		"no keys":        {"", "", "SECRET_KEY and PUBLIC_KEY must both be set"},
		"no public key":  {secret, "", "SECRET_KEY and PUBLIC_KEY must both be set"},
		"short secret":   {secret[:10], public, "SECRET_KEY must be 64 hex characters"},
		"zero secret":    {strings.Repeat("0", 64), public, "not a valid secp256k1 key"},
		"mismatched key": {secret, otherPublic, "PUBLIC_KEY does not belong to SECRET_KEY"},
	} {
		cfg := base
		cfg.SecretKey, cfg.PublicKey = tc.secret, tc.public
		err := cfg.Validate()
		require.ErrorContains(t, err, tc.want, name)
		require.NotContains(t, err.Error(), "\n", "%s: one-line error", name)
	}
}

func TestLoadDotEnv(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".env")
	require.NoError(t, os.WriteFile(path, []byte("# original server\nHOST=0.0.0.0\nPORT=3003\nexport SECRET_KEY=\"abc\"\nPUBLIC_KEY='def'\n\n"), 0o600))
	vars, err := LoadDotEnv(path, env(map[string]string{"PORT": "9999"}))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"HOST": "0.0.0.0", "SECRET_KEY": "abc", "PUBLIC_KEY": "def"}, vars, "the environment wins over the file")

	vars, err = LoadDotEnv(filepath.Join(t.TempDir(), "missing"), env(nil))
	require.NoError(t, err)
	require.Empty(t, vars)
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	secret, public, err := GenerateKeyPair()
	require.NoError(t, err)
	base := map[string]string{"SECRET_KEY": secret, "PUBLIC_KEY": public, "DATABASE_URL": "postgres://x"}
	with := func(v string) map[string]string {
		m := map[string]string{"CACHE_TTL": v}
		for k, x := range base {
			m[k] = x
		}
		return m
	}

	cfg, err := Default().FromEnv(env(base))
	require.NoError(t, err)
	require.Equal(t, time.Second, cfg.CacheTTL, "the default")
	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "250ms": 250 * time.Millisecond, "1m": time.Minute} {
		cfg, err := Default().FromEnv(env(with(v)))
		require.NoError(t, err, v)
		require.Equal(t, want, cfg.CacheTTL, v)
		require.NoError(t, cfg.Validate(), v)
	}
	for _, v := range []string{"-1s", "61s", "1h"} {
		cfg, err := Default().FromEnv(env(with(v)))
		require.NoError(t, err, v)
		require.ErrorContains(t, cfg.Validate(), "CACHE_TTL must be between 0 and 1m", v)
	}
	_, err = Default().FromEnv(env(with("soon")))
	require.ErrorContains(t, err, "CACHE_TTL")
}

// TestInFlightWait: 0 is valid and means a persist does not wait for room
// (api takes the budget only if it is free at once); negative is refused.
func TestInFlightWait(t *testing.T) {
	t.Parallel()
	secret, public, err := GenerateKeyPair()
	require.NoError(t, err)
	with := func(v string) map[string]string {
		return map[string]string{"SECRET_KEY": secret, "PUBLIC_KEY": public, "DATABASE_URL": "postgres://x", "IN_FLIGHT_WAIT": v}
	}
	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "500ms": 500 * time.Millisecond} {
		cfg, err := Default().FromEnv(env(with(v)))
		require.NoError(t, err, v)
		require.Equal(t, want, cfg.InFlightWait, v)
		require.NoError(t, cfg.Validate(), v)
	}
	cfg, err := Default().FromEnv(env(with("-1s")))
	require.NoError(t, err)
	require.ErrorContains(t, cfg.Validate(), "IN_FLIGHT_WAIT must not be negative")
}

func TestRetrieveSettings(t *testing.T) {
	t.Parallel()
	secret, public, err := GenerateKeyPair()
	require.NoError(t, err)
	with := func(kv ...string) map[string]string {
		m := map[string]string{"SECRET_KEY": secret, "PUBLIC_KEY": public, "DATABASE_URL": "postgres://x"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	cfg, err := Default().FromEnv(env(with()))
	require.NoError(t, err)
	require.EqualValues(t, 256<<10, cfg.RetrieveChunkBytes)
	require.Equal(t, 30*time.Second, cfg.SendStallTimeout)
	cfg, err = Default().FromEnv(env(with("RETRIEVE_CHUNK_BYTES", "4096", "SEND_STALL_TIMEOUT", "250ms")))
	require.NoError(t, err)
	require.EqualValues(t, 4096, cfg.RetrieveChunkBytes)
	require.Equal(t, 250*time.Millisecond, cfg.SendStallTimeout)
	require.NoError(t, cfg.Validate())
	cfg, err = Default().FromEnv(env(with("IN_FLIGHT_BYTES", "65536", "MAX_BODY_BYTES", "65536")))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.EqualValues(t, 65536, cfg.RetrieveChunk(), "a smaller budget caps the buffer")

	for _, tc := range []struct{ kv []string }{
		{[]string{"RETRIEVE_CHUNK_BYTES", "4095"}},
		{[]string{"RETRIEVE_CHUNK_BYTES", "16777217"}},
		{[]string{"SEND_STALL_TIMEOUT", "0"}},
		{[]string{"WRITE_TIMEOUT", "0"}},
	} {
		cfg, err := Default().FromEnv(env(with(tc.kv...)))
		require.NoError(t, err, tc.kv)
		err = cfg.Validate()
		require.ErrorContains(t, err, tc.kv[0], tc.kv)
		require.NotContains(t, err.Error(), "\n", "%v: one-line error", tc.kv)
	}
	_, err = Default().FromEnv(env(with("SEND_STALL_TIMEOUT", "30")))
	require.ErrorContains(t, err, "SEND_STALL_TIMEOUT")
	_, err = Default().FromEnv(env(with("RETRIEVE_CHUNK_BYTES", "256k")))
	require.ErrorContains(t, err, "RETRIEVE_CHUNK_BYTES")
}
