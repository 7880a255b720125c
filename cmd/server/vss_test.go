package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/vss"
	"ldkbackup/internal/vsspb"
)

// TestVSSShowQuotaDelete: an operator sees a user's usage, stores, keys and
// versions; sets and clears its own quotas; deletes its data, which lowers
// its usage exactly and is recorded in the audit log.
func TestVSSShowQuotaDelete(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["QUOTA_BYTES"] = "1000"
	ctx := context.Background()
	store := postgres.NewStore(c.pool)
	u := vss.User{Tenant: &backup.Tenant{ID: backup.DefaultTenant, Slug: backup.DefaultTenantSlug}, Token: "02aa"}
	put := func(storeID string, items ...*vsspb.KeyValue) error {
		_, err := store.PutVSS(ctx, u, vss.Write{StoreID: storeID, Puts: items}, time.Now(), backup.WriteLimits{QuotaBytes: 1000, QuotaObjects: 10})
		return err
	}
	require.NoError(t, put("wallet", &vsspb.KeyValue{Key: "manager", Value: make([]byte, 300), Version: -1}))
	require.NoError(t, put("wallet", &vsspb.KeyValue{Key: "manager", Value: make([]byte, 400), Version: -1}, &vsspb.KeyValue{Key: "monitors/1", Value: make([]byte, 100), Version: 0}))
	require.NoError(t, put("other", &vsspb.KeyValue{Key: "x", Value: make([]byte, 50), Version: 0}))
	require.Equal(t, backup.EQUOTA, backup.ErrorCode(put("other", &vsspb.KeyValue{Key: "y", Value: make([]byte, 500), Version: 0})))

	out := c.ok("vss", "show", "02aa")
	require.Contains(t, out, "user:        02aa (tenant default)")
	require.Contains(t, out, "bytes:       550 of 1000 (55.0%; quota: tenant or server default)")
	require.Contains(t, out, "objects:     3 of 5000")
	require.Contains(t, out, `store "wallet": 2 keys, 500 bytes`)
	require.Contains(t, out, `store "other": 1 keys, 50 bytes`)
	require.Regexp(t, `wallet\s+monitors/1\s+1\s+100`, out)
	require.Regexp(t, `wallet\s+manager\s+1\s+400`, out)
	require.Contains(t, out, "quota_bytes: 1 in the last 7 days")
	out = c.ok("vss", "show", "02aa", "--store", "other", "--format", "csv")
	require.Contains(t, out, "other,x,1,50,")
	require.NotContains(t, out, "manager")

	out = c.ok("vss", "quota", "02aa", "--bytes", "2000")
	require.Contains(t, out, "bytes:       550 of 2000 (27.5%; quota: user's own)")
	require.NoError(t, put("other", &vsspb.KeyValue{Key: "y", Value: make([]byte, 500), Version: 0}), "the user's own quota wins in SQL")
	require.Contains(t, c.ok("vss", "quota", "02aa", "--clear"), "quota: tenant or server default")

	out = c.ok("vss", "delete", "02aa", "--store", "other")
	require.Contains(t, out, "deleted 2 keys, 550 bytes")
	require.Contains(t, c.ok("vss", "show", "02aa"), "bytes:       500 of 1000")
	require.Contains(t, c.ok("vss", "delete", "02aa"), "deleted 2 keys, 500 bytes")
	out = c.ok("vss", "show", "02aa")
	require.Contains(t, out, "bytes:       0 of 1000")
	require.Contains(t, out, "objects:     0 of 5000")

	var actions []string
	rows, err := c.pool.Query(ctx, `SELECT detail::text FROM vss_audit_log WHERE user_token = '02aa' AND action = 'vss_user_deleted' ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var d string
		require.NoError(t, rows.Scan(&d))
		actions = append(actions, d)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{`{"bytes": 550, "objects": 2, "store_id": "other"}`, `{"bytes": 500, "objects": 2}`}, actions)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"vss", "delete", "02aa"}, "the user has no keys"},
		{[]string{"vss", "quota", "02aa"}, "give --bytes"},
		{[]string{"vss", "quota", "02aa", "--clear", "--bytes", "5"}, "--clear goes alone"},
		{[]string{"vss", "show", "02aa", "--tenant", "nope"}, `no tenant "nope"`},
		{[]string{"vss", "show", "02aa", "--limit", "0"}, "--limit must be positive"},
	} {
		_, err := c.run(tc.args...)
		require.ErrorContains(t, err, tc.want)
	}
	require.Contains(t, c.ok("vss", "show", "never-wrote"), "first seen:  never wrote")
}

// TestTenantVSSAuth: the operator chooses a tenant's VSS scheme; jwt needs
// an issuer key the server can use, and only jwt takes one.
func TestTenantVSSAuth(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "add", "acme", "--name", "Acme")
	require.Contains(t, c.ok("tenant", "show", "acme"), "VSS authorization:  signature")
	require.Contains(t, c.ok("tenant", "show", "acme"), "VSS base path:      /t/acme/vss")

	dir := t.TempDir()
	writeKey := func(name string, bits int) string {
		key, err := rsa.GenerateKey(rand.Reader, bits)
		require.NoError(t, err)
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		require.NoError(t, err)
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
		return path
	}
	good, small := writeKey("issuer.pem", 2048), writeKey("small.pem", 1024)
	require.Contains(t, c.ok("tenant", "vss-auth", "acme", "jwt", "--jwt-key", good), "VSS authorization:  jwt (RS256 bearer tokens; issuer key sha256 ")
	require.Contains(t, c.ok("tenant", "vss-auth", "default", "none"), "VSS authorization:  none (development only")
	require.Contains(t, c.ok("tenant", "vss-auth", "default", "signature"), "VSS authorization:  signature")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "vss-auth", "acme", "jwt"}, "--jwt-key FILE goes with the jwt scheme"},
		{[]string{"tenant", "vss-auth", "acme", "signature", "--jwt-key", good}, "--jwt-key FILE goes with the jwt scheme"},
		{[]string{"tenant", "vss-auth", "acme", "jwt", "--jwt-key", small}, "2048"},
		{[]string{"tenant", "vss-auth", "acme", "jwt", "--jwt-key", filepath.Join(dir, "missing.pem")}, "no such file"},
		{[]string{"tenant", "vss-auth", "acme", "oauth"}, `SCHEME "oauth"`},
		{[]string{"tenant", "vss-auth", "nope", "signature"}, `no tenant "nope"`},
	} {
		_, err := c.run(tc.args...)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
	require.Contains(t, c.ok("tenant", "show", "acme"), "VSS authorization:  jwt", "a refused change changes nothing")
}

// TestVSSCheck: the usage check finds a VSS user whose recorded usage
// differs from what it stores, exits 1 until it is repaired, and repairs it.
func TestVSSCheck(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	ctx := context.Background()
	store := postgres.NewStore(c.pool)
	u := vss.User{Tenant: &backup.Tenant{ID: backup.DefaultTenant, Slug: backup.DefaultTenantSlug}, Token: "02bb"}
	_, err := store.PutVSS(ctx, u, vss.Write{Puts: []*vsspb.KeyValue{{Key: "k", Value: []byte("seven b"), Version: 0}}}, time.Now(), backup.WriteLimits{})
	require.NoError(t, err)
	require.Contains(t, c.ok("vss", "check"), "usage matches what is stored")

	_, err = c.pool.Exec(ctx, `UPDATE vss_users SET bytes = bytes + 100, objects = objects + 2`)
	require.NoError(t, err)
	out, err := c.run("vss", "check", "02bb", "--format", "csv")
	require.ErrorContains(t, err, "1 user(s) differ")
	require.Contains(t, out, "1,02bb,107,7,3,1,false")
	require.Contains(t, c.ok("vss", "check", "--repair"), "02bb")
	require.Contains(t, c.ok("vss", "check"), "usage matches what is stored")
	require.Contains(t, c.ok("vss", "show", "02bb"), "bytes:       7 of")
}
