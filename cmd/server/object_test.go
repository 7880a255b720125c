package main

import (
	"context"
	"crypto/sha256"
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
	require.Len(t, lines, 5, out)
	require.True(t, strings.HasPrefix(lines[1], "4 "), out)
	require.True(t, strings.HasSuffix(lines[1], "true"), out)
	require.True(t, strings.HasSuffix(lines[4], "false"), "version 1's bytes were dropped: %s", out)

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
		{[]string{"object", "history", node.String(), "bitcoin", "peers"}, "backup not found"},
		{[]string{"object", "history", "nothex", "bitcoin", "peers"}, "Public-Key"},
		{[]string{"object", "history", node.String(), "bitcoin", "channel_monitor"}, "channelId"},
		{[]string{"object", "history", node.String(), "bitcoin", "channel_manager", "--tenant", "nope"}, "unknown"},
		{[]string{"object", "history", node.String()}, "want 3 to 4 arguments"},
	} {
		_, err := c.run(tc.args...)
		require.ErrorContains(t, err, tc.want, strings.Join(tc.args, " "))
	}
	v, err := store.ObjectVersions(ctx, key, 1<<62, 100)
	require.NoError(t, err)
	require.EqualValues(t, 5, v[0].Version, "refused commands changed nothing")
}
