package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/app"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/pgtest"
)

// runWithoutDatabase runs the command line with an empty environment (and
// so no DATABASE_URL): whatever it prints was decided without a database.
func runWithoutDatabase(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// ours lists every command of the tree but cobra's own help and completion.
func ours(cmd *cobra.Command) []*cobra.Command {
	var all []*cobra.Command
	for _, c := range cmd.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		all = append(all, c)
		all = append(all, ours(c)...)
	}
	return all
}

func TestEveryCommandHasHelpWithoutADatabase(t *testing.T) {
	t.Parallel()
	root := newRoot(&cliEnv{getenv: func(string) string { return "" }, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	cmds := ours(root)
	require.Greater(t, len(cmds), 20)
	for _, cmd := range append(cmds, root) {
		path := strings.Fields(cmd.CommandPath())[1:]
		out, _, err := runWithoutDatabase(append(path, "--help")...)
		require.NoError(t, err, cmd.CommandPath())
		require.Contains(t, out, "Usage:", cmd.CommandPath())
		require.Contains(t, out, "Examples:\n", cmd.CommandPath())
		require.Contains(t, cmd.Example, cmd.CommandPath(), "the example runs the command itself")
		require.NotContains(t, out, "DATABASE_URL is not set", cmd.CommandPath())
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
			require.Contains(t, out, "--"+f.Name, "%s --help lists its flag --%s", cmd.CommandPath(), f.Name)
		})
		// "server help tenant add" is the same help.
		viaHelp, _, err := runWithoutDatabase(append([]string{"help"}, path...)...)
		require.NoError(t, err)
		require.Equal(t, out, viaHelp, cmd.CommandPath())
	}
}

func TestWrongCommandLinesExit2BeforeAnyWork(t *testing.T) {
	t.Parallel()
	const node = "02aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "server needs a command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate" for server`},
		{[]string{"tenant"}, "server tenant needs a command"},
		{[]string{"tenant", "frobnicate"}, `unknown command "frobnicate" for server tenant`},
		{[]string{"tenant", "labels"}, "server tenant labels needs a command"},
		{[]string{"tenant", "list", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"tenant", "list", "extra"}, "takes no arguments"},
		{[]string{"tenant", "list", "--format", "xml"}, `unknown format "xml"`},
		{[]string{"tenant", "list", "--format"}, "flag needs an argument"},
		{[]string{"tenant", "show"}, "takes SLUG (1 argument), got 0"},
		{[]string{"tenant", "show", "a", "b"}, "got 2"},
		{[]string{"tenant", "add", "acme", "--nmae", "x"}, "unknown flag: --nmae"},
		{[]string{"tenant", "labels", "add", "acme"}, "takes SLUG LABEL (2 arguments), got 1"},
		{[]string{"object", "history", "--format", "json"}, "(3 to 4 arguments), got 0"},
		{[]string{"object", "history", node, "bitcoin", "peers", "x", "y"}, "got 5"},
		{[]string{"object", "restore", node, "bitcoin", "peers"}, "--version N"},
		{[]string{"object", "restore", node, "bitcoin", "peers", "--version", "two"}, `invalid argument "two"`},
		{[]string{"node", "show", "zz"}, `PUBKEY "zz" is not a node key`},
		{[]string{"node", "show", node, "--bytes", "5"}, "unknown flag: --bytes"},
		{[]string{"node", "quota"}, "takes PUBKEY"},
		{[]string{"report", "nodes", "extra"}, "takes no arguments"},
		{[]string{"report", "tenants", "--since", "7d"}, "unknown flag: --since"},
		{[]string{"report", "daily", "--since", "yesterday"}, `--since "yesterday"`},
		{[]string{"report", "stale", "--format", "yaml"}, `unknown format "yaml"`},
		{[]string{"serve", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"serve", "now"}, "takes no arguments"},
		{[]string{"version", "--short"}, "unknown flag: --short"},
		{[]string{"healthcheck", "--timeout", "soon"}, `invalid argument "soon"`},
	} {
		_, _, err := runWithoutDatabase(tc.args...)
		name := "server " + strings.Join(tc.args, " ")
		require.ErrorContains(t, err, tc.want, name)
		require.Equal(t, exitUsage, exitCode(err), "%s: %v", name, err)
		require.Contains(t, describeError(err), "--help' for usage", name)
	}
	// A command line that is right but cannot be carried out is exit 1.
	_, _, err := runWithoutDatabase("tenant", "list")
	require.ErrorContains(t, err, "DATABASE_URL is not set")
	require.Equal(t, exitError, exitCode(err))
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, err := runWithoutDatabase(args...)
		require.NoError(t, err)
		require.Equal(t, "ldk-backup-server "+app.Version+"\n", out, args)
	}
}

func TestListingsPrintTableCSVAndJSON(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "add", "acme", "--name", "Acme, Inc.")

	table := c.ok("tenant", "list")
	require.True(t, strings.HasPrefix(table, "SLUG "), table)
	require.Contains(t, table, "Acme, Inc.")

	rows, err := csv.NewReader(strings.NewReader(c.ok("tenant", "list", "--format", "csv"))).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"slug", "name", "server_public_key", "extra_labels", "created", "disabled"}, rows[0])
	require.Len(t, rows, 3)
	bySlug := map[string][]string{rows[1][0]: rows[1], rows[2][0]: rows[2]}
	require.Equal(t, "Acme, Inc.", bySlug["acme"][1], "a comma in a name stays in its CSV field")
	require.Equal(t, "", bySlug["acme"][5], "not disabled")

	var tenants []map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("tenant", "list", "--format", "json")), &tenants))
	require.Len(t, tenants, 2)
	acme := tenants[0]
	if acme["slug"] != "acme" {
		acme = tenants[1]
	}
	require.Equal(t, "acme", acme["slug"])
	require.Contains(t, acme, "disabled")
	require.Nil(t, acme["disabled"], "null, not a string")
	require.EqualValues(t, 0, acme["extra_labels"], "a number, not a string")

	var report []map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("report", "tenants", "--format", "json", "--tenant", "acme")), &report))
	require.Len(t, report, 1)
	require.Equal(t, "acme", report[0]["tenant"])
}

func TestAnUnknownTenantIsAnErrorEverywhere(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	const node = "02aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	for _, args := range [][]string{
		{"tenant", "show", "nope"},
		{"tenant", "disable", "nope"},
		{"tenant", "labels", "add", "nope", "fine"},
		{"object", "history", node, "bitcoin", "peers", "--tenant", "nope"},
		{"node", "show", node, "--tenant", "nope"},
		{"report", "nodes", "--tenant", "nope"},
		{"report", "daily", "--tenant", "nope"},
		{"report", "tenants", "--tenant", "nope"},
		{"report", "stale", "--tenant", "nope"},
	} {
		out, err := c.run(args...)
		require.ErrorContains(t, err, `no tenant "nope"`, strings.Join(args, " "))
		require.Empty(t, out, "nothing printed")
	}
}

func TestHealthcheckAsksTheServerOnPORT(t *testing.T) {
	t.Parallel()
	_, dbURL := pgtest.NewPool(t)
	secret, public, err := config.GenerateKeyPair()
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Host, cfg.Port, cfg.AdminAddr = "127.0.0.1", 0, ""
	cfg.DatabaseURL, cfg.SecretKey, cfg.PublicKey = dbURL, secret, public
	cfg.ShutdownTimeout = 5 * time.Second
	a, err := app.New(context.Background(), cfg, cfg.Logger(&bytes.Buffer{}), backup.SystemClock{})
	require.NoError(t, err)
	require.NoError(t, a.Start())
	port := a.URL()[strings.LastIndex(a.URL(), ":")+1:]

	check := func() (string, error) {
		var out bytes.Buffer
		env := map[string]string{"HOST": "0.0.0.0", "PORT": port}
		err := run(context.Background(), []string{"healthcheck", "--timeout", "5s"}, func(k string) string { return env[k] }, &out, &out)
		return out.String(), err
	}
	out, err := check()
	require.NoError(t, err)
	require.Equal(t, "ready: http://127.0.0.1:"+port+"/readyz\n", out)

	require.NoError(t, a.Close())
	_, err = check()
	require.ErrorContains(t, err, "not ready")
	require.Equal(t, exitError, exitCode(err))
}
