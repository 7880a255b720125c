package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/config"
	"ldkbackup/internal/pgtest"
)

// cli runs the server command as an operator would, against a real database.
type cli struct {
	t    *testing.T
	env  map[string]string
	pool *pgxpool.Pool // on DATABASE_URL, for a test's own setup and checks
}

func newCLI(t *testing.T) *cli {
	pool, dbURL := pgtest.NewPool(t)
	return &cli{t: t, pool: pool, env: map[string]string{
		"DATABASE_URL":       dbURL,
		"KEY_ENCRYPTION_KEY": strings.Repeat("ab", 32),
	}}
}

func (c *cli) run(args ...string) (string, error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return c.env[k] }, &out, &errOut)
	return out.String(), err
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	require.NoError(c.t, err, "server %s", strings.Join(args, " "))
	return out
}

func TestTenantCommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t)

	out := c.ok("tenant", "add", "acme", "--name", "Acme Wallet")
	pub := regexp.MustCompile(`pin this in the app\): ([0-9a-f]{66})`).FindStringSubmatch(out)
	require.NotNil(t, pub, out)
	raw, err := hex.DecodeString(pub[1])
	require.NoError(t, err)
	require.Contains(t, []byte{2, 3}, raw[0])
	require.Contains(t, out, "/t/acme")

	c.ok("tenant", "add", "--name", "Zeta", "zeta") // flags before the slug work too
	list := c.ok("tenant", "list")
	require.Contains(t, list, "default")
	require.Contains(t, list, "acme")
	require.Contains(t, list, pub[1])
	require.Contains(t, list, "Zeta")

	c.ok("tenant", "labels", "add", "acme", "acme_wallet", "--group", "bitkit")
	require.Contains(t, c.ok("tenant", "labels", "add", "acme", "acme_notes"), "(group other)", "without --group a label lists under other")
	show := c.ok("tenant", "show", "acme")
	require.Contains(t, show, "acme_notes (other)")
	require.Contains(t, show, "Acme Wallet")
	require.Contains(t, show, pub[1])
	require.Contains(t, show, "acme_wallet (bitkit)")
	require.Contains(t, show, "disabled:           -")
	require.NotContains(t, c.ok("tenant", "show", "zeta"), "acme_wallet", "labels belong to one tenant")

	c.ok("tenant", "disable", "acme")
	require.NotContains(t, c.ok("tenant", "show", "acme"), "disabled:           -")
	c.ok("tenant", "enable", "acme")
	require.Contains(t, c.ok("tenant", "show", "acme"), "disabled:           -")

	require.Contains(t, c.ok("tenant", "show", "default"), "PUBLIC_KEY from the environment")
}

func TestTenantCommandsRefuseBadInput(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "add", "acme", "--name", "Acme")
	before := c.ok("tenant", "list") + c.ok("tenant", "show", "acme")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "add", "acme", "--name", "Again"}, "already exists"},
		{[]string{"tenant", "add", "ACME", "--name", "x"}, "must be 1 to 32"},
		{[]string{"tenant", "add", "../x", "--name", "x"}, "must be 1 to 32"},
		{[]string{"tenant", "add", "new"}, "needs a name"},
		{[]string{"tenant", "add"}, "takes SLUG (1 argument), got 0"},
		{[]string{"tenant", "show", "nope"}, "no tenant"},
		{[]string{"tenant", "disable", "nope"}, "no tenant"},
		{[]string{"tenant", "disable", "default"}, "cannot be disabled"},
		{[]string{"tenant", "labels", "add", "acme", "ping", "--group", "ldk"}, "built in"},
		{[]string{"tenant", "labels", "add", "acme", "Bad-Label", "--group", "ldk"}, "must be 1 to 64"},
		{[]string{"tenant", "labels", "add", "acme", "fine", "--group", "wallet"}, "unknown label group"},
		{[]string{"tenant", "labels", "add", "nope", "fine", "--group", "ldk"}, "no tenant"},
		{[]string{"tenant", "frobnicate"}, "unknown command"},
	} {
		_, err := c.run(tc.args...)
		require.ErrorContains(t, err, tc.want, strings.Join(tc.args, " "))
	}
	c.ok("tenant", "labels", "add", "acme", "dup", "--group", "ldk")
	_, err := c.run("tenant", "labels", "add", "acme", "dup", "--group", "other")
	require.ErrorContains(t, err, "already has label")
	c.ok("tenant", "add", "x", "--name", "x") // still works after the refusals

	after := c.ok("tenant", "show", "acme")
	require.Contains(t, after, "dup (ldk)")
	require.Contains(t, before, "extra labels:       0")

	// Without KEY_ENCRYPTION_KEY a tenant's key cannot be stored.
	delete(c.env, "KEY_ENCRYPTION_KEY")
	_, err = c.run("tenant", "add", "nokek", "--name", "x")
	require.ErrorContains(t, err, "KEY_ENCRYPTION_KEY is not set")
	_, err = c.run("tenant", "show", "nokek")
	require.ErrorContains(t, err, "no tenant")
}

func TestKeygenPrintsAMatchingPair(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"keygen"}, func(string) string { return "" }, &out, &out))
	m := regexp.MustCompile(`SECRET_KEY=([0-9a-f]{64})\nPUBLIC_KEY=([0-9a-f]{66})\n`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	env := map[string]string{"SECRET_KEY": m[1], "PUBLIC_KEY": m[2], "DATABASE_URL": "postgres://unused"}
	cfg, err := config.Load(config.Default(), func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
}

func TestServeRefusesToStartWithoutAValidKeyPair(t *testing.T) {
	t.Parallel()
	secret, public, err := config.GenerateKeyPair()
	require.NoError(t, err)
	_, otherPublic, err := config.GenerateKeyPair()
	require.NoError(t, err)
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": "postgres://x"}, "SECRET_KEY and PUBLIC_KEY must both be set"},
		{map[string]string{"DATABASE_URL": "postgres://x", "SECRET_KEY": secret, "PUBLIC_KEY": otherPublic}, "PUBLIC_KEY does not belong to SECRET_KEY"},
		{map[string]string{"SECRET_KEY": secret, "PUBLIC_KEY": public}, "DATABASE_URL is not set"},
	} {
		err := run(context.Background(), []string{"serve"}, func(k string) string { return tc.env[k] }, &bytes.Buffer{}, &bytes.Buffer{})
		require.ErrorContains(t, err, tc.want)
		require.NotContains(t, err.Error(), "\n", "one line")
	}
}
