package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
)

// TestCreateSessionChangesNothingWithoutALiveChallenge: the statement that
// opens a session also drops the node's expired sessions and marks its
// restore, but only when it consumed a live challenge (a challenge used or
// expired by a concurrent response leaves everything as it was).
func TestCreateSessionChangesNothingWithoutALiveChallenge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.NewPool(t)
	store := postgres.NewStore(pool)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var node backup.NodeKey
	node[0] = 2
	_, err := pool.Exec(ctx, `INSERT INTO node_usage (tenant_id, node_key, first_seen) VALUES (1, $1, $2)`, node[:], now)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO auth_sessions (token_hash, tenant_id, node_key, created_at, expires_at) VALUES ($1, 1, $2, $3, $4)`,
		make([]byte, 32), node[:], now.Add(-10*time.Minute), now.Add(-5*time.Minute))
	require.NoError(t, err)
	require.NoError(t, store.CreateChallenge(ctx, backup.DefaultTenant, node, []byte("live-challenge-0123456789abcdef!"), now, now.Add(time.Minute), 4))

	state := func() (sessions, challenges int, restored bool) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM auth_sessions), (SELECT count(*) FROM auth_challenges),
			(SELECT last_restore IS NOT NULL FROM node_usage)`).Scan(&sessions, &challenges, &restored))
		return
	}

	token := []byte("token-hash-0123456789abcdef-0001")
	err = store.CreateSession(ctx, backup.DefaultTenant, node, []byte("not-a-live-challenge-0123456789a"), token, now, now.Add(5*time.Minute))
	require.ErrorIs(t, err, backup.ErrNotFound)
	s, c, r := state()
	require.Equal(t, []any{1, 1, false}, []any{s, c, r}, "nothing changed")

	require.NoError(t, store.CreateSession(ctx, backup.DefaultTenant, node, []byte("live-challenge-0123456789abcdef!"), token, now, now.Add(5*time.Minute)))
	s, c, r = state()
	require.Equal(t, []any{1, 0, true}, []any{s, c, r}, "the challenge consumed, the expired session replaced by the new one, the restore marked")
}
