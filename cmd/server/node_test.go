package main

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/postgres"
)

func TestNodeShowAndQuota(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["QUOTA_BYTES"] = "1000"
	ctx := context.Background()
	store := postgres.NewStore(c.pool)
	node := backup.NodeKey{0x02, 0x07}
	limits := backup.WriteLimits{QuotaBytes: 1000, QuotaObjects: 10}

	put := func(label string, size int) error {
		body := make([]byte, size)
		body[0] = byte(len(label))
		body[size-1] = byte(size)
		_, err := store.PutObject(ctx, backup.ObjectKey{Tenant: backup.DefaultTenant, Node: node, Network: "bitcoin", Label: label}, body, sha256.Sum256(body), time.Now(), 5, limits)
		return err
	}
	require.NoError(t, put("ping", 600))
	require.Equal(t, backup.EQUOTA, backup.ErrorCode(put("peers", 600)), "over the 1000-byte quota")

	out := c.ok("node", "show", node.String())
	require.Contains(t, out, "bytes:       600 of 1000 (60.0%; quota: tenant or server default)")
	require.Contains(t, out, "objects:     1 of 5000")
	require.Contains(t, out, "uploads:     1 of 1000000 (0.0%; quota: server default), remembered for the replay rule, about 88 bytes")
	require.Contains(t, out, "bitcoin    1 objects")
	require.Contains(t, out, "quota_bytes: 1 in the last 7 days")

	out = c.ok("node", "quota", node.String(), "--bytes", "5000")
	require.Contains(t, out, "bytes:       600 of 5000 (12.0%; quota: node's own)")
	limits.QuotaBytes = 1000 // the tenant's quota; the node's own wins in SQL
	require.NoError(t, put("peers", 600))

	out = c.ok("node", "quota", node.String(), "--uploads", "7")
	require.Contains(t, out, "uploads:     2 of 7 (28.6%; quota: node's own)")

	out = c.ok("node", "quota", node.String(), "--clear")
	require.Contains(t, out, "own quotas cleared")
	require.Contains(t, out, "quota: tenant or server default")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "quota", node.String()}, "give --bytes"},
		{[]string{"node", "quota", node.String(), "--bytes", "-1"}, "positive"},
		{[]string{"node", "quota", node.String(), "--clear", "--bytes", "5"}, "--clear goes alone"},
		{[]string{"node", "show", "zz"}, `PUBKEY "zz" is not a node key`},
		{[]string{"node", "show", node.String(), "--tenant", "nope"}, `no tenant "nope"`},
	} {
		_, err := c.run(tc.args...)
		require.ErrorContains(t, err, tc.want)
	}
	require.Contains(t, c.ok("node", "show", backup.NodeKey{0x03}.String()), "never stored anything")
}

// TestNodeCheck: the usage check finds a node whose recorded usage differs
// from what it stores, exits 1 until it is repaired, and repairs it.
func TestNodeCheck(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	ctx := context.Background()
	store := postgres.NewStore(c.pool)
	node := backup.NodeKey{0x02, 0x08}
	body := []byte("seven b")
	_, err := store.PutObject(ctx, backup.ObjectKey{Tenant: backup.DefaultTenant, Node: node, Network: "bitcoin", Label: "ping"}, body, sha256.Sum256(body), time.Now(), 5, backup.WriteLimits{})
	require.NoError(t, err)
	require.Contains(t, c.ok("node", "check"), "usage matches what is stored")

	_, err = c.pool.Exec(ctx, `UPDATE node_usage SET bytes = bytes + 100 WHERE node_key = $1`, node[:])
	require.NoError(t, err)
	out, err := c.run("node", "check", node.String())
	require.ErrorContains(t, err, "1 node(s) differ")
	require.Contains(t, out, node.String())
	require.Contains(t, out, "107")
	out = c.ok("node", "check", "--repair", "--format", "json")
	require.Contains(t, out, `"recorded_bytes": 107`)
	require.Contains(t, out, `"stored_bytes": 7`)
	require.Contains(t, c.ok("node", "check"), "usage matches what is stored")
	_, err = c.run("node", "check", "--tenant", "nope")
	require.ErrorContains(t, err, `no tenant "nope"`)
}
