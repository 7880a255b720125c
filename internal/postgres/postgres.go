// Package postgres is the PostgreSQL adapter: it opens the pool, runs the
// embedded migrations, wraps the sqlc-generated queries and maps driver errors
// to the domain's errors in one place.
package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3/lock"
)

// Open connects a pool to databaseURL and checks that the database answers.
// Every transaction commits synchronously: a persist that was answered 200
// survives a crash of the server or of PostgreSQL.
func Open(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := parseConfig(databaseURL)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return pool, nil
}

func parseConfig(databaseURL string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	// Durability is not left to the server's defaults or a role's settings.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	// An unreachable database fails a request in seconds, not at the TCP
	// timeout; a URL's own connect_timeout wins.
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "ldk-backup-server"
	}
	return cfg, nil
}

func newSessionLocker() (lock.SessionLocker, error) {
	return lock.NewPostgresSessionLocker()
}
