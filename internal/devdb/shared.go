package devdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"ldkbackup/internal/pgdb"
)

// connectTimeout bounds each probe, so a firewalled port costs seconds, not
// minutes.
const connectTimeout = 3 * time.Second

// useSharedServer is step 2: a PostgreSQL that already answers with the
// usual PG* defaults. It reports false when nothing usable answers, so that
// Resolve moves on to the project-local cluster.
func useSharedServer(ctx context.Context, opts Options) (string, bool) {
	for _, dbURL := range sharedServerURLs(opts.DBName) {
		err := ensureDatabase(ctx, dbURL)
		if err == nil {
			opts.Logger.InfoContext(ctx, "using the PostgreSQL server that answers on the default address", "url", dbURL)
			return dbURL, true
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			// Nothing (or not PostgreSQL) answers there: the usual case on a
			// machine without a system server, not worth a word.
			opts.Logger.DebugContext(ctx, "no PostgreSQL on the default address", "url", dbURL, "error", err)
			return "", false
		}
		// A server answered but refused this user (password, pg_hba.conf,
		// no CREATEDB): try the next user, then the local cluster.
		fmt.Fprintf(opts.Stdout, "PostgreSQL at %s is not usable: %v\n", redact(dbURL), err)
	}
	return "", false
}

// sharedServerURLs lists the URLs to try, one per candidate user, as libpq
// would build them from the PG* environment, except that the host defaults
// to 127.0.0.1 (TCP, as DESIGN.md says) rather than a Unix socket.
// PGPASSWORD is left out of the URLs: pgx reads it from the environment
// itself, and the URL may end up in a log.
func sharedServerURLs(dbName string) []string {
	host := envOr("PGHOST", "127.0.0.1")
	port := envOr("PGPORT", "5432")
	users := []string{os.Getenv("PGUSER")}
	if users[0] == "" {
		users = []string{"postgres"}
		if u, err := user.Current(); err == nil && u.Username != "postgres" {
			users = append(users, u.Username)
		}
	}
	urls := make([]string, 0, len(users))
	for _, u := range users {
		urls = append(urls, databaseURL(host, port, u, dbName))
	}
	return urls
}

// databaseURL builds a postgres:// URL. TLS is turned off for loopback and
// Unix sockets (Debian enables ssl with a snakeoil certificate, which only
// slows down every connection) unless PGSSLMODE says otherwise.
func databaseURL(host, port, userName, dbName string) string {
	u := url.URL{Scheme: "postgres", User: url.User(userName), Path: "/" + dbName}
	q := url.Values{}
	if strings.HasPrefix(host, "/") {
		q.Set("host", host)
		q.Set("port", port)
	} else {
		u.Host = net.JoinHostPort(host, port)
	}
	if os.Getenv("PGSSLMODE") == "" && isLocal(host) {
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func isLocal(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ensureDatabase makes sure the database dbURL names exists, creating it
// from a maintenance database when it does not. Concurrent callers are fine:
// whoever loses the race to create it sees "already exists" and carries on.
func ensureDatabase(ctx context.Context, dbURL string) error {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("parse %s: %w", redact(dbURL), err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	if !hasCode(err, "3D000") { // invalid_catalog_name: the database is missing
		return err
	}

	dbName := cfg.Database
	admin, err := connectMaintenance(ctx, cfg)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	// template0 rather than the default template1: we may be connected to
	// template1, and a pristine copy is what a new project database wants.
	err = pgdb.Create(ctx, admin, dbName, "template0", "")
	if err != nil && !isDuplicateDatabase(err) {
		return fmt.Errorf("create database %s: %w", dbName, err)
	}
	return nil
}

// isDuplicateDatabase recognises losing a race to create a database: usually
// duplicate_database, but a create that overlaps another's commit trips
// pg_database's unique index instead.
func isDuplicateDatabase(err error) bool {
	return hasCode(err, "42P04") || hasCode(err, "23505")
}

// connectMaintenance connects as cfg's user to the database every cluster
// has ("postgres", else "template1") to run CREATE DATABASE from.
func connectMaintenance(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	var err error
	for _, name := range []string{"postgres", "template1"} {
		admin := cfg.Copy()
		admin.Database = name
		var conn *pgx.Conn
		conn, err = pgx.ConnectConfig(ctx, admin)
		if err == nil {
			return conn, nil
		}
		if !hasCode(err, "3D000") {
			break
		}
	}
	return nil, fmt.Errorf("connect to a maintenance database: %w", err)
}

func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// redact hides a password in a URL meant for a message.
func redact(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
