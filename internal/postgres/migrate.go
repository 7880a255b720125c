package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"ldkbackup/db"
)

// migrationsFS is the embedded migrations directory, rooted so goose sees the
// files at its top level.
func migrationsFS() fs.FS {
	sub, err := fs.Sub(db.Migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}

// Migrate applies every pending embedded migration to the database at
// databaseURL, then this release's definition of every SQL function
// (db/functions). goose takes an advisory lock, so replicas starting
// together migrate once; the functions take one of their own.
//
// Rolling back: a function has no Down. A release applies its own
// definitions when it starts, so the functions match the binary that calls
// them after a roll back too. The Down sections of the migrations that once
// defined functions stay as they were, history like the rest.
func Migrate(ctx context.Context, databaseURL string, logger *slog.Logger) error {
	return withMigrationProvider(ctx, databaseURL, func(sqlDB *sql.DB, p *goose.Provider) error {
		results, err := p.Up(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		for _, r := range results {
			logger.InfoContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
		}
		return applyFunctions(ctx, sqlDB)
	})
}

func withMigrationProvider(ctx context.Context, databaseURL string, fn func(*sql.DB, *goose.Provider) error) error {
	cfg, err := parseConfig(databaseURL)
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDB(*cfg.ConnConfig)
	defer sqlDB.Close()
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	p, err := newMigrationProvider(sqlDB)
	if err != nil {
		return err
	}
	return fn(sqlDB, p)
}

func newMigrationProvider(sqlDB *sql.DB) (*goose.Provider, error) {
	locker, err := newSessionLocker()
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrationsFS(), goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// MigrateTo applies the embedded migrations up to and including version,
// and no function file: for tests that load data at one version, as an
// older release left it, and check it after the next.
func MigrateTo(ctx context.Context, databaseURL string, version int64) error {
	return withMigrationProvider(ctx, databaseURL, func(_ *sql.DB, p *goose.Provider) error {
		_, err := p.UpTo(ctx, version)
		return err
	})
}

// MigrateDownTo rolls migrations back to version (0: an empty schema). For
// tests of the Down sections; production migrations only go forward.
func MigrateDownTo(ctx context.Context, databaseURL string, version int64) error {
	return withMigrationProvider(ctx, databaseURL, func(_ *sql.DB, p *goose.Provider) error {
		_, err := p.DownTo(ctx, version)
		return err
	})
}

// LatestMigration is the version of the newest embedded migration: the
// number its file name starts with.
func LatestMigration() (int64, error) {
	entries, err := fs.ReadDir(migrationsFS(), ".")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range entries {
		digits, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %s: no version number", e.Name())
		}
		latest = max(latest, v)
	}
	return latest, nil
}
