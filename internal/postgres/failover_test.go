package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
)

// A database whose sessions start read-only stands in for a demoted primary:
// writes fail with read_only_sql_transaction (25006), as on a node
// pg_auto_failover turned into a standby.

func writeActivity(ctx context.Context, store *postgres.Store) error {
	return store.ActivityAdd(ctx, time.Now().UTC().Truncate(24*time.Hour), 1, "persist", 1, 1)
}

// TestReadOnlyPrimaryIsUnavailableAndItsConnectionsAreDropped: while the
// node takes no writes, a write is EUNAVAILABLE with a Retry-After (503,
// not 500) and Ready says not ready; once it takes writes again, the same
// pool writes without being reopened, because it kept none of the
// read-only connections it had.
func TestReadOnlyPrimaryIsUnavailableAndItsConnectionsAreDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	pgtest.SetReadOnly(t, dbURL, true)
	pool, err := postgres.Open(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	store := postgres.NewStore(pool)

	// Several connections, as under load, all of them read-only.
	conns := make([]*pgxpool.Conn, 4)
	for i := range conns {
		conns[i], err = pool.Acquire(ctx)
		require.NoError(t, err)
	}
	for _, c := range conns {
		c.Release()
	}
	err = writeActivity(ctx, store)
	require.Error(t, err)
	require.Equal(t, backup.EUNAVAILABLE, backup.ErrorCode(err), "a write on a read-only node: %v", err)
	var be *backup.Error
	require.ErrorAs(t, err, &be)
	require.Positive(t, be.RetryAfter)
	require.Equal(t, backup.EUNAVAILABLE, backup.ErrorCode(store.Ready(ctx)))

	pgtest.SetReadOnly(t, dbURL, false)
	require.NoError(t, writeActivity(ctx, store), "the pool handed out a connection opened while the node was read-only")
	require.NoError(t, store.Ready(ctx))
}

// TestSessionMadeReadOnlyIsNotReused: a connection whose session turned
// read-only after it was opened (what a node sees when it is being demoted)
// is closed when released, not handed to the next request.
func TestSessionMadeReadOnlyIsNotReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	pid := conn.Conn().PgConn().PID()
	_, err = conn.Exec(ctx, `SET default_transaction_read_only = on`)
	require.NoError(t, err)
	conn.Release()

	require.NoError(t, writeActivity(ctx, postgres.NewStore(pool)))
	for range 3 {
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		got := c.Conn().PgConn().PID()
		c.Release() // before require: Close waits for every acquired connection
		require.NotEqual(t, pid, got, "the read-only connection was handed out again")
	}
}

// TestMultiHostURLFindsTheWritableHost: with target_session_attrs=read-write
// the pool skips a host that does not answer and one that takes no writes,
// and connects to the one that does; with no writable host the server is
// unavailable (503), not broken.
func TestMultiHostURLFindsTheWritableHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	// Port 1 on loopback refuses connections: a dead node listed first.
	u.Host = "127.0.0.1:1," + u.Host
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	u.RawQuery = q.Encode()

	pool, err := postgres.Open(ctx, u.String())
	require.NoError(t, err)
	defer pool.Close()
	store := postgres.NewStore(pool)
	require.NoError(t, writeActivity(ctx, store))

	// No writable host left: new connections are refused by the URL's
	// own rule, and the pool's old ones were read-write when made.
	pgtest.SetReadOnly(t, dbURL, true)
	pool.Reset() // as after the old primary's connections broke
	err = writeActivity(ctx, store)
	require.Equal(t, backup.EUNAVAILABLE, backup.ErrorCode(err), "no writable host: %v", err)
	require.Equal(t, backup.EUNAVAILABLE, backup.ErrorCode(store.Ready(ctx)))

	pgtest.SetReadOnly(t, dbURL, false)
	require.NoError(t, writeActivity(ctx, store))
}

// TestReplicationOfASinglePostgreSQL: every connection of the pool commits
// synchronously whatever the server's default, and a PostgreSQL with no
// standby is reported as such (what a formation's primary says when its
// standby is away).
func TestReplicationOfASinglePostgreSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set("synchronous_commit", "local") // a role's or URL's weaker setting does not win
	u.RawQuery = q.Encode()
	pool, err := postgres.Open(ctx, u.String())
	require.NoError(t, err)
	defer pool.Close()
	rep, err := postgres.NewStore(pool).Replication(ctx)
	require.NoError(t, err)
	require.Equal(t, "on", rep.SynchronousCommit)
	require.Equal(t, "", rep.SynchronousStandbyNames)
	require.Zero(t, rep.Standbys)
	require.False(t, rep.Synchronous())
}
