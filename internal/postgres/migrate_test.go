package postgres_test

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
)

// TestTenantsMigrationKeepsData: rows stored before tenants existed belong
// to the default tenant afterwards and are served as before.
func TestTenantsMigrationKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewBlankDatabase(t)
	require.NoError(t, postgres.MigrateTo(ctx, dbURL, 1))

	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	node := backup.NodeKey{0x02, 0xaa}
	payload := []byte("stored at version 1")
	sum := sha256.Sum256(payload)
	now := time.Now()
	_, err = pool.Exec(ctx, `INSERT INTO objects (tenant_id, node_key, network, label, channel_id, payload, size, sha256, created_at, updated_at)
		VALUES (1, $1, 'bitcoin', 'channel_manager', '\x', $2, $3, $4, $5, $5)`, node[:], payload, len(payload), sum[:], now)
	require.NoError(t, err)

	require.NoError(t, postgres.Migrate(ctx, dbURL, slog.New(slog.DiscardHandler)))
	store := postgres.NewStore(pool)
	require.NoError(t, store.Ready(ctx), "every embedded migration is applied")

	// A database whose functions an older release applied is not ready for
	// this one, which would answer 500 to whatever calls a missing one.
	_, err = pool.Exec(ctx, `DROP FUNCTION vss_auth_advance`)
	require.NoError(t, err)
	err = store.Ready(ctx)
	require.Equal(t, backup.EUNAVAILABLE, backup.ErrorCode(err))
	require.ErrorContains(t, err, "vss_auth_advance")
	require.NoError(t, postgres.Migrate(ctx, dbURL, slog.New(slog.DiscardHandler)))
	require.NoError(t, store.Ready(ctx), "migrate applies the functions again")

	def, err := store.TenantBySlug(ctx, backup.DefaultTenantSlug)
	require.NoError(t, err)
	require.Equal(t, backup.DefaultTenant, def.ID)
	require.Nil(t, def.PublicKey, "the default tenant's key stays in the environment")
	require.Nil(t, def.DisabledAt)
	require.Empty(t, def.Labels)

	got, err := store.GetObject(ctx, backup.ObjectKey{Tenant: def.ID, Node: node, Network: "bitcoin", Label: "channel_manager"}, 0, time.Now(), backup.ReadLimit{})
	require.NoError(t, err)
	require.Equal(t, payload, got)
}

// TestMigrationsRollBack: every migration's Down section undoes its Up.
func TestMigrationsRollBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewBlankDatabase(t)
	require.NoError(t, postgres.Migrate(ctx, dbURL, slog.New(slog.DiscardHandler)))
	require.NoError(t, postgres.MigrateDownTo(ctx, dbURL, 0))
	require.NoError(t, postgres.Migrate(ctx, dbURL, slog.New(slog.DiscardHandler)))
}

// TestVersionsMigrationKeepsData: an object stored before versions existed
// is version 1 afterwards, and its bytes count as uploaded (no replay).
func TestVersionsMigrationKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewBlankDatabase(t)
	require.NoError(t, postgres.MigrateTo(ctx, dbURL, 2))

	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	node := backup.NodeKey{0x03, 0xbb}
	payload := []byte("stored at version 2")
	sum := sha256.Sum256(payload)
	_, err = pool.Exec(ctx, `INSERT INTO objects (tenant_id, node_key, network, label, channel_id, payload, size, sha256, created_at, updated_at)
		VALUES (1, $1, 'signet', 'channel_monitor', $2, $3, $4, $5, now(), now())`, node[:], make([]byte, 32), payload, len(payload), sum[:])
	require.NoError(t, err)

	require.NoError(t, postgres.Migrate(ctx, dbURL, slog.New(slog.DiscardHandler)))
	store := postgres.NewStore(pool)
	key := backup.ObjectKey{Tenant: backup.DefaultTenant, Node: node, Network: "signet", Label: "channel_monitor", ChannelID: make([]byte, 32)}
	vs, err := store.ObjectVersions(ctx, key, 1<<62, 10)
	require.NoError(t, err)
	require.Len(t, vs, 1)
	require.EqualValues(t, 1, vs[0].Version)
	require.True(t, vs[0].Held)
	got, err := store.GetObject(ctx, key, 1, time.Now(), backup.ReadLimit{})
	require.NoError(t, err)
	require.Equal(t, payload, got)

	other := key
	other.Label, other.ChannelID = "channel_manager", nil
	_, err = store.PutObject(ctx, other, payload, sum, time.Now(), 5, backup.WriteLimits{})
	require.Equal(t, backup.ECONFLICT, backup.ErrorCode(err), "the migrated bytes are known: replaying them elsewhere is refused: %v", err)
	res, err := store.PutObject(ctx, key, payload, sum, time.Now(), 5, backup.WriteLimits{})
	require.NoError(t, err)
	require.True(t, res.Unchanged)
}

// TestLimitsMigrationCountsExistingUsage: nodes with objects before limits
// existed start with their real usage.
func TestLimitsMigrationCountsExistingUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewBlankDatabase(t)
	require.NoError(t, postgres.MigrateTo(ctx, dbURL, 3))
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	node := backup.NodeKey{0x02, 0xcc}
	store := postgres.NewStore(pool)
	for _, label := range []string{"ping", "peers"} {
		body := []byte("bytes of " + label)
		_, err := pool.Exec(ctx, `SELECT persist_object(1, $1, 'bitcoin', $2, '\x', $3, $4, now(), 5, false)`, node[:], label, body, sha(body))
		require.NoError(t, err)
	}

	require.NoError(t, postgres.Migrate(ctx, dbURL, slog.New(slog.DiscardHandler)))
	r, err := store.NodeReport(ctx, backup.DefaultTenant, node, time.Now().AddDate(0, 0, -1))
	require.NoError(t, err)
	require.NotNil(t, r.Usage)
	require.EqualValues(t, len("bytes of ping")+len("bytes of peers"), r.Usage.Bytes)
	require.EqualValues(t, 2, r.Usage.Objects)
}

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// functionDefs returns every function of the public schema with its
// definition as PostgreSQL prints it.
func functionDefs(t *testing.T, dbURL string) map[string]string {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	rows, err := pool.Query(ctx, `
		SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
		FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
		WHERE n.nspname = 'public'`)
	require.NoError(t, err)
	defs := map[string]string{}
	for rows.Next() {
		var sig, def string
		require.NoError(t, rows.Scan(&sig, &def))
		defs[sig] = def
	}
	require.NoError(t, rows.Err())
	return defs
}

// TestFunctionsAreTheSameHoweverMigrated: a database migrated in one go and
// one migrated a version at a time, as successive releases would, end with
// the same functions, each defined by its file in db/functions (one
// function per file, no overload left behind by an older migration).
func TestFunctionsAreTheSameHoweverMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	fresh := pgtest.NewBlankDatabase(t)
	require.NoError(t, postgres.Migrate(ctx, fresh, logger))

	stepped := pgtest.NewBlankDatabase(t)
	latest, err := postgres.LatestMigration()
	require.NoError(t, err)
	for v := int64(1); v <= latest; v++ {
		require.NoError(t, postgres.MigrateTo(ctx, stepped, v))
	}
	require.NoError(t, postgres.Migrate(ctx, stepped, logger))
	require.NoError(t, postgres.Migrate(ctx, stepped, logger), "applying the functions again changes nothing")

	want := functionDefs(t, fresh)
	require.Equal(t, want, functionDefs(t, stepped))
	files, err := postgres.Functions()
	require.NoError(t, err)
	var names []string
	for sig := range want {
		name, _, _ := strings.Cut(sig, "(")
		names = append(names, name)
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(files)), names, "every function has its file, and one definition")
}

// TestFunctionFilesWinOverMigrations: what the database runs is the file's
// definition, also where a migration left an older body behind.
func TestFunctionFilesWinOverMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewBlankDatabase(t)
	require.NoError(t, postgres.Migrate(ctx, dbURL, slog.New(slog.DiscardHandler)))
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `CREATE OR REPLACE FUNCTION rate_hit(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer)
		RETURNS integer LANGUAGE sql AS $$ SELECT -1 $$`)
	require.NoError(t, err)
	require.NoError(t, postgres.Migrate(ctx, dbURL, slog.New(slog.DiscardHandler)))
	var used int
	require.NoError(t, pool.QueryRow(ctx, `SELECT rate_hit('k', now(), 60, 10)`).Scan(&used))
	require.Equal(t, 1, used)
}
