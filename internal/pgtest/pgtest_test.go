package pgtest

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestNewDatabaseGivesEachTestItsOwnMigratedDatabase(t *testing.T) {
	t.Parallel()

	var (
		mu    sync.Mutex
		names []string
	)
	// Both write before either reads, so each would see the other's row if
	// they shared a database.
	var written sync.WaitGroup
	written.Add(2)

	t.Run("pair", func(t *testing.T) {
		for _, slug := range []string{"alpha", "beta"} {
			t.Run(slug, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				doneWriting := sync.OnceFunc(written.Done)
				defer doneWriting() // never leave the other test waiting

				pool, dbURL := NewPool(t)
				mu.Lock()
				names = append(names, databaseName(t, dbURL))
				mu.Unlock()

				var objects *string
				require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass('objects')::text").Scan(&objects))
				require.NotNil(t, objects, "migrated: the objects table exists")

				_, err := pool.Exec(ctx, `INSERT INTO tenants (slug, name, server_public_key, server_secret_sealed)
					VALUES ($1, $1, '\x02'::bytea || decode(md5($1) || md5($1), 'hex'), '\x00')`, slug)
				require.NoError(t, err)
				doneWriting()
				waitFor(t, &written)

				var slugs []string
				require.NoError(t, pool.QueryRow(ctx, "SELECT array_agg(slug ORDER BY id) FROM tenants").Scan(&slugs))
				require.Equal(t, []string{"default", slug}, slugs, "only the migration's row and our own")
			})
		}
	})

	require.Len(t, names, 2)
	require.NotEqual(t, names[0], names[1])
	for _, name := range names {
		require.False(t, databaseExists(t, name), "%s is dropped when its test ends", name)
	}
}

func TestTemplateIsMigratedAndClosedToConnections(t *testing.T) {
	t.Parallel()
	NewDatabase(t) // builds the template if this test runs first
	srv, err := sharedServer()
	require.NoError(t, err)

	var isTemplate, allowConn bool
	require.NoError(t, srv.admin.QueryRow(t.Context(),
		"SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1", srv.template,
	).Scan(&isTemplate, &allowConn))
	require.True(t, isTemplate)
	require.False(t, allowConn)
	require.False(t, databaseExists(t, strings.Replace(srv.template, "_tmpl_", "_part_", 1)), "no half-built template left")
}

func TestTemplateNameFollowsTheBaseDatabase(t *testing.T) {
	t.Parallel()

	a, err := templateName("ldkbackup_ci_1")
	require.NoError(t, err)
	b, err := templateName("ldkbackup_ci_2")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(a, "ldkbackup_ci_1_tmpl_"))
	require.NotEqual(t, a[len(a)-12:], b[len(b)-12:], "the hash covers the base database")

	long, err := templateName(strings.Repeat("é", 40))
	require.NoError(t, err)
	require.LessOrEqual(t, len(long), 63)
	require.Contains(t, long, "_tmpl_")
}

func TestDropStaleDatabasesDropsOnlyOldOnes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	NewDatabase(t)
	srv, err := sharedServer()
	require.NoError(t, err)

	now := time.Now()
	old := newDatabaseName(now.Add(-2 * staleAfter))
	fresh := newDatabaseName(now)
	for _, name := range []string{old, fresh} {
		require.NoError(t, srv.cloneTemplate(ctx, name, srv.template, cloneStrategy))
		t.Cleanup(func() { require.NoError(t, srv.dropDatabase(context.Background(), name)) })
	}

	srv.dropStaleDatabases(ctx, now)
	require.False(t, databaseExists(t, old))
	require.True(t, databaseExists(t, fresh))
}

func TestDatabaseURLPointsAtTheNewDatabase(t *testing.T) {
	t.Parallel()

	for _, base := range []string{
		"postgres://postgres:secret@127.0.0.1:5432/ldkbackup_test?sslmode=disable",
		"host=127.0.0.1 port=5432 user=postgres dbname=ldkbackup_test sslmode=disable",
	} {
		srv := &server{baseURL: base}
		cfg, err := pgx.ParseConfig(srv.databaseURL("pgtest_1_abcdef01"))
		require.NoError(t, err, base)
		require.Equal(t, "pgtest_1_abcdef01", cfg.Database, base)
		require.Equal(t, "127.0.0.1", cfg.Host, base)
	}
}

// BenchmarkNewDatabase times a clone of the template with each strategy
// PostgreSQL 15 offers, the drop, and the two as NewDatabase does them.
func BenchmarkNewDatabase(b *testing.B) {
	NewDatabase(b)
	srv, err := sharedServer()
	require.NoError(b, err)
	ctx := context.Background()

	for _, strategy := range []string{"WAL_LOG", "FILE_COPY"} {
		b.Run("create/"+strategy, func(b *testing.B) {
			for b.Loop() {
				name := newDatabaseName(time.Now())
				require.NoError(b, srv.cloneTemplate(ctx, name, srv.template, strategy))
				b.StopTimer()
				require.NoError(b, srv.dropDatabase(ctx, name))
				b.StartTimer()
			}
		})
	}
	b.Run("drop", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			name := newDatabaseName(time.Now())
			require.NoError(b, srv.cloneTemplate(ctx, name, srv.template, cloneStrategy))
			b.StartTimer()
			require.NoError(b, srv.dropDatabase(ctx, name))
		}
	})
	b.Run("create+drop", func(b *testing.B) {
		for b.Loop() {
			name := newDatabaseName(time.Now())
			require.NoError(b, srv.cloneTemplate(ctx, name, srv.template, cloneStrategy))
			require.NoError(b, srv.dropDatabase(ctx, name))
		}
	})
}

func databaseName(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	return strings.TrimPrefix(u.Path, "/")
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	srv, err := sharedServer()
	require.NoError(t, err)
	var exists bool
	require.NoError(t, srv.admin.QueryRow(context.Background(),
		"SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	return exists
}

func waitFor(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the other test never wrote its row")
	}
}
