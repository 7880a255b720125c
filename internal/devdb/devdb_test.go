package devdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/pgdb"
)

func TestResolveReturnsEnvURLAsIs(t *testing.T) {
	t.Parallel()

	// Nothing answers there: Resolve must not even try.
	const env = "postgres://someone@db.invalid:1/whatever"
	got, err := Resolve(t.Context(), Options{EnvURL: env, DataDir: t.TempDir(), DBName: "x"})
	require.NoError(t, err)
	require.Equal(t, env, got)
}

func TestResolveUsesTheServerOnTheDefaultAddress(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	addr := net.JoinHostPort(envOr("PGHOST", "127.0.0.1"), envOr("PGPORT", "5432"))
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		t.Skipf("step 2 needs a PostgreSQL on %s, and nothing answers there (%v); step 3 is tested by TestResolveStartsAndReusesALocalCluster", addr, err)
	} else {
		c.Close()
	}

	dbName := "devdb_test_" + randomHex(t)
	opts := Options{DataDir: t.TempDir(), DBName: dbName}
	t.Cleanup(func() { require.NoError(t, Stop(context.Background(), opts.DataDir)) }) // should this fall through to step 3
	got, err := Resolve(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { dropDatabase(t, got) })

	u, err := url.Parse(got)
	require.NoError(t, err)
	require.Equal(t, addr, u.Host)
	require.Equal(t, dbName, currentDatabase(t, got))
	require.NoDirExists(t, filepath.Join(opts.DataDir, "pg"), "no local cluster when a server answers")

	again, err := Resolve(ctx, opts)
	require.NoError(t, err, "the database exists now")
	require.Equal(t, got, again)
}

// Not parallel: it stops its cluster and expects the same port back on the
// restart, and TestResolveAsRootMovesAClusterThePostgresUserCannotReach,
// starting its own cluster in that window, would take the freed port (the
// restart then rightly moves to the next one).
func TestResolveStartsAndReusesALocalCluster(t *testing.T) {
	ctx := t.Context()
	if _, err := findBinaries(ctx, 0); err != nil {
		t.Skipf("step 3 needs initdb and pg_ctl: %v", err)
	}

	dataDir := reachableTempDir(t)
	t.Cleanup(func() { require.NoError(t, Stop(context.Background(), dataDir)) })
	opts := Options{DataDir: dataDir, DBName: "devdb_local", skipSharedServer: true}

	// Several callers at once, as `go test ./...` runs packages: one inits
	// and starts, the others wait on the lock and reuse the cluster.
	const callers = 3
	urls := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { urls[i], errs[i] = Resolve(ctx, opts) })
	}
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		require.Equal(t, urls[0], urls[i])
	}
	dbURL := urls[0]

	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", u.Hostname())
	require.NotEqual(t, "5432", u.Port())
	require.Equal(t, "devdb_local", currentDatabase(t, dbURL))
	require.Equal(t, "127.0.0.1", showSetting(t, dbURL, "listen_addresses"))
	require.FileExists(t, filepath.Join(dataDir, "pg", "PG_VERSION"))
	if os.Geteuid() == 0 {
		requireOwnedBy(t, filepath.Join(dataDir, "pg"), serviceUser)
	}

	require.NoError(t, Stop(ctx, dataDir))
	_, err = pgx.Connect(ctx, dbURL)
	require.Error(t, err, "the server is stopped")
	require.NoError(t, Stop(ctx, dataDir), "stopping a stopped cluster is fine")

	// Started again, not created again: same port, same database.
	again, err := Resolve(ctx, opts)
	require.NoError(t, err)
	require.Equal(t, dbURL, again)
	require.Equal(t, "devdb_local", currentDatabase(t, again))
}

func TestResolveAsRootMovesAClusterThePostgresUserCannotReach(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if os.Geteuid() != 0 {
		t.Skip("only root runs PostgreSQL as another user")
	}
	if _, err := findBinaries(ctx, 0); err != nil {
		t.Skipf("step 3 needs initdb and pg_ctl: %v", err)
	}

	dataDir := t.TempDir() // 0700, like a repository under /root
	opts := Options{DataDir: dataDir, DBName: "devdb_moved", skipSharedServer: true}
	c, err := locateCluster(ctx, opts)
	require.NoError(t, err)
	home, err := user.Lookup(serviceUser)
	require.NoError(t, err)
	require.Equal(t, home.HomeDir, filepath.Dir(c.dir))
	t.Cleanup(func() {
		require.NoError(t, Stop(context.Background(), dataDir))
		require.NoError(t, os.RemoveAll(c.dir))
	})

	dbURL, err := Resolve(ctx, opts)
	require.NoError(t, err)
	require.Equal(t, "devdb_moved", currentDatabase(t, dbURL))
	require.FileExists(t, filepath.Join(c.dir, "PG_VERSION"))
	require.NoDirExists(t, filepath.Join(dataDir, "pg"))
}

func TestResolveSaysHowToGetPostgres(t *testing.T) {
	t.Parallel()

	_, err := Resolve(t.Context(), Options{
		DataDir:          t.TempDir(),
		DBName:           "x",
		skipSharedServer: true,
		findBinaries: func(context.Context, int) (binaries, error) {
			return binaries{}, errNoBinaries
		},
	})
	require.Error(t, err)
	for _, advice := range []string{"apt-get install postgresql", "DATABASE_URL", "docker compose up"} {
		require.Contains(t, err.Error(), advice)
	}
}

func TestStopWithoutAClusterDoesNothing(t *testing.T) {
	t.Parallel()

	require.NoError(t, Stop(t.Context(), t.TempDir()))
	require.NoError(t, Stop(t.Context(), filepath.Join(t.TempDir(), "missing")))
}

func TestFindBinariesRefusesAnotherVersionForAnExistingCluster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	newest, err := findBinaries(ctx, 0)
	if err != nil {
		t.Skipf("needs PostgreSQL binaries: %v", err)
	}
	require.FileExists(t, filepath.Join(newest.dir, "initdb"))

	same, err := findBinaries(ctx, newest.major)
	require.NoError(t, err)
	require.Equal(t, newest, same)

	_, err = findBinaries(ctx, 99)
	require.ErrorContains(t, err, "created by PostgreSQL 99")
}

func TestPortIsTheLastSettingInPostgresqlConf(t *testing.T) {
	t.Parallel()

	c := &cluster{dir: t.TempDir()}
	conf := "#port = 5432\nport = 54329\nmax_connections = 100\n port=54330   # moved\n"
	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "postgresql.conf"), []byte(conf), 0o600))
	port, err := c.port()
	require.NoError(t, err)
	require.Equal(t, 54330, port)
}

func TestDatabaseURL(t *testing.T) {
	t.Setenv("PGSSLMODE", "")

	require.Equal(t, "postgres://postgres@127.0.0.1:5432/app?sslmode=disable",
		databaseURL("127.0.0.1", "5432", "postgres", "app"))
	require.Equal(t, "postgres://me@/app?host=%2Fvar%2Frun%2Fpostgresql&port=5433&sslmode=disable",
		databaseURL("/var/run/postgresql", "5433", "me", "app"))
	require.Equal(t, "postgres://me@db.example:5432/app",
		databaseURL("db.example", "5432", "me", "app"), "TLS as libpq would choose, away from this machine")

	cfg, err := pgx.ParseConfig(databaseURL("/var/run/postgresql", "5433", "me", "app"))
	require.NoError(t, err)
	require.Equal(t, "/var/run/postgresql", cfg.Host)
	require.Equal(t, uint16(5433), cfg.Port)
}

// reachableTempDir is a t.TempDir() the postgres user can enter when we are
// root (TempDir makes its directories 0700), so the cluster lives inside it
// as it would in the repository's .data.
func reachableTempDir(t *testing.T) string {
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
		require.NoError(t, os.Chmod(dir, 0o755))
	}
	return dir
}

func requireOwnedBy(t *testing.T, path, userName string) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	u, err := user.Lookup(userName)
	require.NoError(t, err)
	require.Equal(t, u.Uid, strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)))
}

func currentDatabase(t *testing.T, dbURL string) string {
	t.Helper()
	return queryString(t, dbURL, "SELECT current_database()")
}

func showSetting(t *testing.T, dbURL, name string) string {
	t.Helper()
	return queryString(t, dbURL, "SELECT current_setting($1)", name)
}

func queryString(t *testing.T, dbURL, sql string, args ...any) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var s string
	require.NoError(t, conn.QueryRow(t.Context(), sql, args...).Scan(&s))
	return s
}

func dropDatabase(t *testing.T, dbURL string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	require.NoError(t, err)
	ctx := context.Background()
	admin, err := connectMaintenance(ctx, cfg)
	require.NoError(t, err)
	defer admin.Close(ctx)
	require.NoError(t, pgdb.Drop(ctx, admin, cfg.Database, true))
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
