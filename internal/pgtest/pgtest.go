// Package pgtest gives each test a PostgreSQL database of its own, migrated
// and empty, cloned from a template in tens of milliseconds, so tests that
// hit the database run in parallel without sharing rows.
//
// The server comes from TEST_DATABASE_URL, else from internal/devdb (a server
// on 127.0.0.1:5432, else the project-local cluster under .data), else from
// testcontainers when a Docker engine answers. Without any of them every test
// that asks for a database fails, saying why: tests never skip the database.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"ldkbackup/db"
	"ldkbackup/internal/devdb"
	"ldkbackup/internal/pgdb"
	"ldkbackup/internal/postgres"
)

const (
	// testDBPrefix names every database NewDatabase creates; the creation
	// time in the name lets a later run drop what a killed run left behind.
	testDBPrefix = "pgtest_"
	// staleAfter is far beyond any test run, so a live database is never
	// swept.
	staleAfter = time.Hour
	// cloneStrategy is the server's default: WAL_LOG on PostgreSQL 15+,
	// which cloned the 8 MB template faster than FILE_COPY in
	// BenchmarkNewDatabase, and spares the shared server the two checkpoints
	// FILE_COPY forces. Leaving it out also keeps PostgreSQL 14 working.
	cloneStrategy = ""
)

// NewDatabase returns the URL of a new database with every migration
// applied, private to this test and dropped when it ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, func(s *server) string { return s.template })
}

// NewBlankDatabase returns the URL of a new database with no migrations
// applied, for tests of the migrations themselves.
func NewBlankDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, func(*server) string { return "template0" })
}

func newDatabase(t testing.TB, template func(*server) string) string {
	t.Helper()
	srv, err := sharedServer()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	name := newDatabaseName(time.Now())
	if err := srv.cloneTemplate(ctx, name, template(srv), cloneStrategy); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.dropDatabase(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return srv.databaseURL(name)
}

// NewPool is NewDatabase with a pool opened as the server opens its own
// (synchronous commit on), closed when the test ends.
func NewPool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the drop: cleanups run last-in first-out
	return pool, dbURL
}

// sharedServer finds the server and builds the template once per test
// process; every test of the process then clones that template. Its pool
// and any container live as long as the process (testcontainers' reaper
// removes the container after it).
var sharedServer = sync.OnceValues(func() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // apt-get may have to run
	defer cancel()
	baseURL, err := resolveServer(ctx)
	if err != nil {
		return nil, err
	}
	return prepareServer(ctx, baseURL)
})

// server is the PostgreSQL the tests of this process use.
type server struct {
	baseURL  string        // the database we were given; the template and test databases sit beside it
	admin    *pgxpool.Pool // on baseURL, for CREATE and DROP DATABASE
	template string
}

func prepareServer(ctx context.Context, baseURL string) (*server, error) {
	cfg, err := pgxpool.ParseConfig(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parse the test database URL: %w", err)
	}
	cfg.MaxConns = 4
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redact(baseURL), err)
	}
	template, err := templateName(cfg.ConnConfig.Database)
	if err != nil {
		admin.Close()
		return nil, err
	}
	srv := &server{baseURL: baseURL, admin: admin, template: template}
	if err := srv.ensureTemplate(ctx); err != nil {
		admin.Close()
		return nil, err
	}
	srv.dropStaleDatabases(ctx, time.Now())
	return srv, nil
}

// resolveServer returns the URL of a database on the server to use.
func resolveServer(ctx context.Context) (string, error) {
	root, err := repositoryRoot()
	if err != nil {
		return "", err
	}
	dbURL, devErr := devdb.Resolve(ctx, devdb.Options{
		EnvURL:       os.Getenv("TEST_DATABASE_URL"),
		DataDir:      filepath.Join(root, ".data"),
		DBName:       "ldkbackup_test",
		Logger:       slog.New(slog.DiscardHandler),
		Stdout:       os.Stderr,
		AllowInstall: true,
	})
	if devErr == nil {
		return dbURL, nil
	}
	if !dockerAnswers(ctx) {
		return "", fmt.Errorf("no PostgreSQL for tests, and no Docker engine answers for testcontainers either: %w", devErr)
	}
	dbURL, err = startContainer(ctx)
	if err != nil {
		return "", fmt.Errorf("no PostgreSQL on this machine (%v), and testcontainers failed: %w", devErr, err)
	}
	return dbURL, nil
}

// repositoryRoot walks up from the package being tested to go.mod.
func repositoryRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory, so no .data directory for a project-local PostgreSQL; set TEST_DATABASE_URL")
		}
		dir = parent
	}
}

// templateName derives the template's name from the migrations, the
// functions and the base database: a changed migration or function gets a
// new template, and two CI runs given
// different databases on one server build their own. The base name leads,
// so whoever drops the base database can find its template too.
func templateName(baseDB string) (string, error) {
	h := sha256.New()
	h.Write([]byte(baseDB))
	for _, sql := range []fs.FS{db.Migrations, db.Functions} {
		err := fs.WalkDir(sql, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(sql, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "\x00%s\x00%d\x00", path, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hash the migrations and functions: %w", err)
		}
	}
	// 63 bytes is PostgreSQL's limit; the suffix takes 18.
	for len(baseDB) > 40 {
		_, size := utf8.DecodeLastRuneInString(baseDB)
		baseDB = baseDB[:len(baseDB)-size]
	}
	return baseDB + "_tmpl_" + hex.EncodeToString(h.Sum(nil)[:6]), nil
}

// ensureTemplate builds the migrated template unless it exists. go test runs
// packages as parallel processes, so one builds while the others wait on an
// advisory lock (session-level, on a connection of its own, released when
// that connection closes), and the template is built under another name and
// renamed when complete: nobody can clone half a migration.
func (s *server) ensureTemplate(ctx context.Context) error {
	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(s.baseURL), err)
	}
	// Hijacked and closed, so the lock can never stay behind in the pool.
	lockConn := conn.Hijack()
	defer lockConn.Close(context.Background())

	sum := sha256.Sum256([]byte(s.template))
	if _, err := lockConn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(binary.BigEndian.Uint64(sum[:8]))); err != nil {
		return fmt.Errorf("lock the template: %w", err)
	}
	var exists bool
	if err := lockConn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", s.template).Scan(&exists); err != nil {
		return fmt.Errorf("look for the template: %w", err)
	}
	if exists {
		return nil
	}

	building := strings.Replace(s.template, "_tmpl_", "_part_", 1)
	// Left by a process that died while building: we hold the lock, so nobody else uses it.
	if err := pgdb.Drop(ctx, lockConn, building, true); err != nil {
		return fmt.Errorf("build the template: drop %s: %w", building, err)
	}
	if err := pgdb.Create(ctx, lockConn, building, "template0", ""); err != nil {
		return fmt.Errorf("build the template: create %s: %w", building, err)
	}
	if err := postgres.Migrate(ctx, s.databaseURL(building), slog.New(slog.DiscardHandler)); err != nil {
		return fmt.Errorf("migrate the template: %w", err)
	}
	stmts := []string{
		// No connections: one would make every clone fail with 55006.
		"ALTER DATABASE " + pgdb.Ident(building) + " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
		"ALTER DATABASE " + pgdb.Ident(building) + " RENAME TO " + pgdb.Ident(s.template),
	}
	for _, stmt := range stmts {
		if err := retryWhileInUse(ctx, func() error { _, err := lockConn.Exec(ctx, stmt); return err }); err != nil {
			return fmt.Errorf("publish the template: %s: %w", stmt, err)
		}
	}
	return nil
}

// cloneTemplate creates database name from template.
func (s *server) cloneTemplate(ctx context.Context, name, template, strategy string) error {
	err := retryWhileInUse(ctx, func() error { return pgdb.Create(ctx, s.admin, name, template, strategy) })
	if err != nil {
		return fmt.Errorf("create the test database: %w", err)
	}
	return nil
}

func (s *server) dropDatabase(ctx context.Context, name string) error {
	if err := pgdb.Drop(ctx, s.admin, name, true); err != nil {
		return fmt.Errorf("drop the test database %s: %w", name, err)
	}
	return nil
}

// dropStaleDatabases drops test databases that killed runs left behind (a
// test binary that times out never runs its cleanups). Only old ones nobody
// is connected to, and without FORCE: a database in use stays. Failures are
// ignored; the next run tries again.
func (s *server) dropStaleDatabases(ctx context.Context, now time.Time) {
	rows, err := s.admin.Query(ctx, `
		SELECT datname FROM pg_database d
		WHERE datname ~ ('^' || $1 || '[0-9]+_[0-9a-f]{8}$')
		  AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.datid = d.oid)`, testDBPrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		if created, ok := createdAt(name); ok && now.Sub(created) > staleAfter {
			_ = pgdb.Drop(ctx, s.admin, name, false)
		}
	}
}

// databaseURL is the base URL pointed at another database on the server.
func (s *server) databaseURL(name string) string {
	u, err := url.Parse(s.baseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// keyword=value form: a later dbname wins.
		return s.baseURL + " dbname='" + name + "'"
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// newDatabaseName is pgtest_<unix seconds>_<random>: unique across parallel
// processes and runs, and its age can be read back by dropStaleDatabases.
func newDatabaseName(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails
	return testDBPrefix + strconv.FormatInt(now.Unix(), 10) + "_" + hex.EncodeToString(b)
}

func createdAt(name string) (time.Time, bool) {
	unix, _, ok := strings.Cut(strings.TrimPrefix(name, testDBPrefix), "_")
	if !ok {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(unix, 10, 64)
	return time.Unix(sec, 0), err == nil
}

// retryWhileInUse retries fn while PostgreSQL says a database it needs to
// itself is "being accessed by other users" (55006), for at most ten seconds:
// the backends of connections just closed take a moment to exit.
func retryWhileInUse(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func redact(dbURL string) string {
	if u, err := url.Parse(dbURL); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "the test database"
}

// SetReadOnly makes new sessions of the database at dbURL read-only (on) or
// writable again (off), as a node pg_auto_failover demotes to a standby
// answers writes; sessions already open keep what they had.
func SetReadOnly(t testing.TB, dbURL string, on bool) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	// This session may itself have started read-only.
	stmt := `ALTER DATABASE ` + pgdb.Ident(conn.Config().Database) + ` RESET default_transaction_read_only`
	if on {
		stmt = `ALTER DATABASE ` + pgdb.Ident(conn.Config().Database) + ` SET default_transaction_read_only = on`
	}
	for _, s := range []string{`SET default_transaction_read_only = off`, stmt} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("pgtest: %s: %v", s, err)
		}
	}
}
