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
	_, err := pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pgstattuple")
	require.NoError(t, err)
	// VACUUM FULL keeps a dead row that an open snapshot could still see;
	// when other tests' transactions hold one back, compact again until no
	// dead row is left, then measure.
	size := func() int64 {
		require.Eventually(t, func() bool {
			_, err := pool.Exec(ctx, "VACUUM FULL")
			require.NoError(t, err)
			var dead int64
			require.NoError(t, pool.QueryRow(ctx, `SELECT sum((pgstattuple(c.oid)).dead_tuple_count)::bigint FROM pg_class AS c
				JOIN pg_namespace AS n ON n.oid = c.relnamespace
				WHERE c.relkind = 'r' AND n.nspname = 'public'`).Scan(&dead))
			return dead == 0
		}, time.Minute, 100*time.Millisecond, "dead rows left after VACUUM FULL")
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
	if perPersist > 96 {
		rows, err := pool.Query(ctx, `SELECT c.relname, pg_relation_size(c.oid) FROM pg_class AS c
			JOIN pg_namespace AS n ON n.oid = c.relnamespace
			WHERE n.nspname IN ('public', 'pg_toast') AND pg_relation_size(c.oid) > 16384 ORDER BY 1`)
		require.NoError(t, err)
		for rows.Next() {
			var name string
			var bytes int64
			require.NoError(t, rows.Scan(&name, &bytes))
			t.Logf("%s: %d bytes", name, bytes)
		}
		rows.Close()
	}
	require.LessOrEqual(t, perPersist, 96.0)
	var versions int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM object_versions`).Scan(&versions))
	require.Equal(t, objects, versions)
}
