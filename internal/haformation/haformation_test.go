package haformation_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/haformation"
	"ldkbackup/internal/postgres"
)

// TestFormationFollowsTheNewPrimary builds a real formation (about 75 s),
// checks it is synchronous, and has the server's pool write through a
// planned switchover: it finds the new primary by itself and every write
// it was told succeeded is there. It runs only where pg_auto_failover is
// installed (make ha-up installs it; CI machines do not have it), and not
// with -short.
func TestFormationFollowsTheNewPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a pg_auto_failover formation (about two minutes); not with -short")
	}
	ctx := context.Background()
	if _, _, _, err := haformation.Binaries(ctx); errors.Is(err, haformation.ErrNoAutoctl) {
		t.Skipf("skipped: needs pg_auto_failover (%v); `make ha-up` installs it as root on Debian", err)
	} else if err != nil {
		t.Skipf("skipped: no PostgreSQL binaries to build a formation with: %v", err)
	}
	t.Parallel()
	// PostgreSQL runs as the postgres user when we are root: the directory
	// must be reachable by it, which t.TempDir (0700) is not.
	dir, err := os.MkdirTemp("", "ldkbackup-haformation-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	f, err := haformation.Up(ctx, haformation.Options{Dir: dir + "/ha"})
	if f != nil {
		t.Cleanup(func() { _ = f.Destroy() })
	}
	require.NoError(t, err)
	sync, detail, err := f.Synchronous(ctx)
	require.NoError(t, err)
	require.True(t, sync, detail)

	pool, err := postgres.Open(ctx, f.URL())
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `CREATE TABLE writes (n int PRIMARY KEY)`)
	require.NoError(t, err)
	written := 0
	write := func() error {
		_, err := pool.Exec(ctx, `INSERT INTO writes VALUES ($1)`, written+1)
		if err == nil {
			written++
		}
		return err
	}
	require.NoError(t, write())
	before, err := f.Primary(ctx)
	require.NoError(t, err)

	require.NoError(t, f.Switchover(ctx))
	require.NoError(t, f.WaitSynchronous(ctx))
	after, err := f.Primary(ctx)
	require.NoError(t, err)
	require.NotEqual(t, before.Name, after.Name)
	// The pool's connections to the old primary fail once, then it
	// connects to the new one; a minute is far more than that takes.
	deadline := time.Now().Add(time.Minute)
	for err := write(); err != nil; err = write() {
		require.True(t, time.Now().Before(deadline), "no write succeeded a minute after the switchover: %v", err)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM writes`).Scan(&n))
	require.Equal(t, written, n)

	require.NoError(t, f.Down(ctx))
	_, err = os.Stat(f.Dir)
	require.ErrorIs(t, err, os.ErrNotExist)
}
