package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/postgres"
)

func TestObjectHistoryAndRestore(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["RETAIN_VERSIONS"] = "3"
	ctx := context.Background()
	store := postgres.NewStore(c.pool)

	node := backup.NodeKey{0x03, 0x01, 0x02}
	key := backup.ObjectKey{Tenant: backup.DefaultTenant, Node: node, Network: "bitcoin", Label: "channel_manager"}
	for i := 1; i <= 4; i++ {
		body := []byte(fmt.Sprint("state ", i))
		_, err := store.PutObject(ctx, key, body, sha256.Sum256(body), time.Now(), 3, backup.WriteLimits{})
		require.NoError(t, err)
	}

	out := c.ok("object", "history", node.String(), "bitcoin", "channel_manager")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, "version 1 is beyond retention and gone: %s", out)
	require.True(t, strings.HasPrefix(lines[1], "4 "), out)
	require.True(t, strings.HasSuffix(lines[1], "true"), out)
	require.True(t, strings.HasPrefix(lines[3], "2 "), out)

	var versions []struct {
		Version int64 `json:"version"`
		Held    bool  `json:"held"`
	}
	require.NoError(t, json.Unmarshal([]byte(c.ok("object", "history", node.String(), "bitcoin", "channel_manager", "--format", "json")), &versions))
	require.Len(t, versions, 3)
	require.EqualValues(t, 4, versions[0].Version)
	require.True(t, versions[2].Held)

	// Restore version 2 (its bytes in hand; the replay rule does not block it).
	require.Contains(t, c.ok("object", "restore", node.String(), "bitcoin", "channel_manager", "--version", "2"), "restored version 2 as version 5")
	got, err := store.GetObject(ctx, key, 0, time.Now(), backup.ReadLimit{})
	require.NoError(t, err)
	require.Equal(t, "state 2", string(got))
	var action string
	require.NoError(t, c.pool.QueryRow(ctx, `SELECT action FROM audit_log`).Scan(&action))
	require.Equal(t, "version_restored", action)

	// Restoring what is already the latest changes nothing.
	require.Contains(t, c.ok("object", "restore", node.String(), "bitcoin", "channel_manager", "--version", "5"), "nothing changed")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"object", "restore", node.String(), "bitcoin", "channel_manager", "--version", "1"}, "no longer held"},
		{[]string{"object", "restore", node.String(), "bitcoin", "channel_manager", "--version", "99"}, "no version 99"},
		{[]string{"object", "restore", node.String(), "bitcoin", "channel_manager"}, "--version N"},
		{[]string{"object", "history", node.String(), "bitcoin", "peers"}, "no such object"},
		{[]string{"object", "history", "nothex", "bitcoin", "peers"}, `PUBKEY "nothex" is not a node key`},
		{[]string{"object", "history", node.String(), "bitcoin", "channel_monitor"}, "needs its CHANNEL_ID"},
		{[]string{"object", "history", node.String(), "bitcoin", "channel_monitor", "zz"}, `CHANNEL_ID "zz"`},
		{[]string{"object", "history", node.String(), "mainnet", "peers"}, `NETWORK "mainnet"`},
		{[]string{"object", "history", node.String(), "bitcoin", "acme_wallet"}, `LABEL "acme_wallet" is not a label of tenant default`},
		{[]string{"object", "history", node.String(), "bitcoin", "channel_manager", "--tenant", "nope"}, `no tenant "nope"`},
		{[]string{"object", "history", node.String()}, "takes PUBKEY NETWORK LABEL [CHANNEL_ID] (3 to 4 arguments), got 1"},
	} {
		_, err := c.run(tc.args...)
		require.ErrorContains(t, err, tc.want, strings.Join(tc.args, " "))
	}
	v, err := store.ObjectVersions(ctx, key, 1<<62, 100)
	require.NoError(t, err)
	require.EqualValues(t, 5, v[0].Version, "refused commands changed nothing")
}
