package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"ldkbackup/internal/devdb"
	"ldkbackup/internal/pgdb"
)

// benchDatabaseName is fresh for every run, so runs never share rows and a
// crashed run's database is easy to recognise (and drop).
func benchDatabaseName(now time.Time) string {
	return "ldkbackup_bench_" + now.UTC().Format("20060102_150405")
}

// createDatabase creates database name and returns its URL. With pgURL empty
// the PostgreSQL is found (or started) as `make run` finds it; otherwise
// pgURL names the server (any database on it).
func createDatabase(ctx context.Context, pgURL, name string, logger *slog.Logger, stdout io.Writer) (string, error) {
	if pgURL == "" {
		// EnvURL is left empty on purpose: a DATABASE_URL in the environment
		// is someone's database, not a place to create bench databases.
		return devdb.Resolve(ctx, devdb.Options{DataDir: ".data", DBName: name, Logger: logger, Stdout: stdout})
	}
	dbURL, err := withDatabase(pgURL, name)
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", redact(pgURL), err)
	}
	defer conn.Close(ctx)
	if err := pgdb.Create(ctx, conn, name, "template0", ""); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return dbURL, nil
}

// dropDatabase drops the database dbURL names, from the server's maintenance
// database. FORCE ends the connections a crashed server may have left.
func dropDatabase(ctx context.Context, dbURL string) error {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to drop %s: %w", name, err)
	}
	defer conn.Close(ctx)
	return pgdb.Drop(ctx, conn, name, true)
}

// withDatabase returns pgURL naming database name instead.
func withDatabase(pgURL, name string) (string, error) {
	u, err := url.Parse(pgURL)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", redact(pgURL), err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// withQueryParam returns dbURL with key=value added to its query (pgx reads
// pool settings such as pool_max_conns from there).
func withQueryParam(dbURL, key, value string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", redact(dbURL), err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redact hides a password in a URL meant for a message.
func redact(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// checkpoint flushes dirty pages before a measured run, so no run pays for
// the previous one's writes. It needs superuser (PostgreSQL 15); without it
// the runs are only less comparable, so a refusal is logged, not fatal.
func checkpoint(ctx context.Context, e *benchEnv) {
	if _, err := e.admin.Exec(ctx, "CHECKPOINT"); err != nil && !e.checkpointWarned {
		e.checkpointWarned = true
		e.log.Warn("CHECKPOINT before each run refused; runs may pay for earlier writes", "error", err)
	}
}
