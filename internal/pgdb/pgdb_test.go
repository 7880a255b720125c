package pgdb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/pgdb"
	"ldkbackup/internal/pgtest"
)

// TestCreateAndDrop: a name that needs quoting is created, copied from a
// template, refused while in use without force and dropped with it.
func TestCreateAndDrop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, _ := pgtest.NewPool(t)
	name := `pgdb "odd" name ` + t.Name()
	copyName := name + " copy"
	t.Cleanup(func() {
		require.NoError(t, pgdb.Drop(ctx, admin, copyName, true))
		require.NoError(t, pgdb.Drop(ctx, admin, name, true))
	})

	require.NoError(t, pgdb.Create(ctx, admin, name, "template0", ""))
	var pgErr *pgconn.PgError
	err := pgdb.Create(ctx, admin, name, "", "")
	require.True(t, errors.As(err, &pgErr) && pgErr.Code == "42P04", "already exists: %v", err)
	require.NoError(t, pgdb.Create(ctx, admin, copyName, name, "FILE_COPY"))

	cfg := admin.Config().ConnConfig.Copy()
	cfg.Database = name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(ctx) })
	err = pgdb.Drop(ctx, admin, name, false)
	require.True(t, errors.As(err, &pgErr) && pgErr.Code == "55006", "in use: %v", err)
	require.NoError(t, pgdb.Drop(ctx, admin, name, true))
	require.NoError(t, pgdb.Drop(ctx, admin, name, false), "a missing database is no error")

	var n int
	require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname IN ($1, $2)", name, copyName).Scan(&n))
	require.Equal(t, 1, n, "only the copy is left")
}
