package postgres_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
)

// TestHistoryPerPersistIsBounded: what the database keeps for each persist
// once retention has dropped its bytes (RETAIN_VERSIONS=1) is at most 96
// bytes of tables and indexes. VACUUM FULL leaves only what is kept: the
// dead rows of dropped versions are space PostgreSQL reuses, not growth.
func TestHistoryPerPersistIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.NewPool(t)
	store := postgres.NewStore(pool)
	size := func() int64 {
		_, err := pool.Exec(ctx, "VACUUM FULL")
		require.NoError(t, err)
		var n int64
		require.NoError(t, pool.QueryRow(ctx, `SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class AS c
			JOIN pg_namespace AS n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'm') AND n.nspname = 'public'`).Scan(&n))
		return n
	}
	const objects, persists = 10, 15000
	node := backup.NodeKey{0x02, 0x77}
	key := func(i int) backup.ObjectKey {
		return backup.ObjectKey{Tenant: backup.DefaultTenant, Node: node, Network: "regtest", Label: "channel_monitor", ChannelID: []byte(fmt.Sprintf("%032d", i%objects))}
	}
	body := make([]byte, 64)
	persist := func(i int) {
		_, _ = rand.Read(body)
		_, err := store.PutObject(ctx, key(i), body, sha256.Sum256(body), time.Now(), 1, backup.WriteLimits{})
		require.NoError(t, err)
	}
	for i := range objects {
		persist(i)
	}
	before := size()
	for i := range persists {
		persist(i)
	}
	after := size()
	perPersist := float64(after-before) / persists
	t.Logf("tables and indexes: %d -> %d bytes, %.1f bytes per persist", before, after, perPersist)
	require.LessOrEqual(t, perPersist, 96.0)
	var versions int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM object_versions`).Scan(&versions))
	require.Equal(t, objects, versions)
}
