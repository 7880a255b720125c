package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/dbsqlc"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
)

// TestRateHitCommitsWithoutWaitingForTheDisk: a rate counter's transaction
// turns synchronous_commit off for itself only. The connection goes back to
// the pool with durable commits, so the persist that takes it next waits for
// its flush as before.
func TestRateHitCommitsWithoutWaitingForTheDisk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, dbURL := pgtest.NewPool(t)
	sep := "?"
	if strings.Contains(dbURL, "?") {
		sep = "&"
	}
	pool, err := postgres.Open(ctx, dbURL+sep+"pool_max_conns=1") // one connection: every query below shares it
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store := postgres.NewStore(pool)
	now := time.Date(2026, 11, 26, 12, 0, 30, 0, time.UTC)

	for i := range 3 {
		n, err := store.RateHit(ctx, "k", now, 60, 3)
		require.NoError(t, err)
		require.EqualValues(t, i+1, n)
	}
	_, err = store.RateHit(ctx, "k", now, 60, 3)
	require.Equal(t, backup.ERATELIMITED, backup.ErrorCode(err))
	n, retry, err := store.RatePeek(ctx, "k", now, 60, 3)
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "the refused hit is not counted")
	require.Equal(t, 20*time.Second, retry, "one request's share of the window refills first")

	// The allowance refills continuously: one request every 20 s, not all
	// three when a minute window turns.
	_, err = store.RateHit(ctx, "k", now.Add(19*time.Second), 60, 3)
	require.Equal(t, backup.ERATELIMITED, backup.ErrorCode(err))
	n, err = store.RateHit(ctx, "k", now.Add(20*time.Second), 60, 3)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	_, err = store.RateHit(ctx, "k", now.Add(20*time.Second), 60, 3)
	require.Equal(t, backup.ERATELIMITED, backup.ErrorCode(err))
	n, retry, err = store.RatePeek(ctx, "k", now.Add(80*time.Second), 60, 3)
	require.NoError(t, err)
	require.EqualValues(t, 0, n, "a minute after the last request the allowance is whole again")
	require.Zero(t, retry)

	var setting string
	require.NoError(t, pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&setting))
	require.Equal(t, "on", setting, "after a rate hit the connection commits durably again")

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = dbsqlc.New(tx).RateHit(ctx, dbsqlc.RateHitParams{Key: "other", Now: now, WindowSeconds: 60, Max: 10})
	require.NoError(t, err)
	require.NoError(t, tx.QueryRow(ctx, "SHOW synchronous_commit").Scan(&setting))
	require.Equal(t, "off", setting, "the counter's own transaction does not wait for the flush")
}
