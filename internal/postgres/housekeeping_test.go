package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
)

func TestHousekeepingSweepsOnlyWhatExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.NewPool(t)
	now := time.Now()
	node := make([]byte, 33)
	node[0] = 2
	for i, exp := range []time.Time{now.Add(-time.Second), now.Add(time.Minute)} {
		_, err := pool.Exec(ctx, `INSERT INTO auth_challenges (challenge, tenant_id, node_key, created_at, expires_at) VALUES ($1, 1, $2, $3, $4)`,
			append(make([]byte, 31), byte(i)), node, now, exp)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO auth_sessions (token_hash, tenant_id, node_key, created_at, expires_at) VALUES ($1, 1, $2, $3, $4)`,
			append(make([]byte, 31), byte(i)), node, now, exp)
		require.NoError(t, err)
	}
	// A key whose next turn has passed is at rest; one ahead of now is not.
	_, err := pool.Exec(ctx, `INSERT INTO rate_limits (key, tat) VALUES ('rested', $1), ('live', $2)`, now.Add(-time.Second), now.Add(30*time.Second))
	require.NoError(t, err)

	store := postgres.NewStore(pool)
	sw, err := store.Housekeep(ctx, now, postgres.Sweep{})
	require.NoError(t, err)
	require.Equal(t, postgres.Swept{Ran: true, Challenges: 1, Sessions: 1, RateCounters: 1}, sw)
	for _, table := range []string{"auth_challenges", "auth_sessions", "rate_limits"} {
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n))
		require.Equal(t, 1, n, table)
	}
}

// TestHousekeepingRunsOnOneReplicaAtATime: while another session holds the
// lock, a run does nothing.
func TestHousekeepingRunsOnOneReplicaAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.NewPool(t)
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	var locked bool
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(7385110412001)`).Scan(&locked))
	require.True(t, locked)

	sw, err := postgres.NewStore(pool).Housekeep(ctx, time.Now(), postgres.Sweep{})
	require.NoError(t, err)
	require.False(t, sw.Ran)

	require.NoError(t, tx.Rollback(ctx))
	sw, err = postgres.NewStore(pool).Housekeep(ctx, time.Now(), postgres.Sweep{})
	require.NoError(t, err)
	require.True(t, sw.Ran)
}
