// Package postgres is the PostgreSQL adapter: it opens the pool, runs the
// embedded migrations, wraps the sqlc-generated queries and maps driver errors
// to the domain's errors in one place.
package postgres

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	followPrimary(cfg)
	return cfg, nil
}

// followPrimary makes the pool keep only connections to a writable primary,
// so that after a failover it finds the new one by itself. A multi-host
// DATABASE_URL with target_session_attrs=read-write picks the primary when
// a connection is made; what it cannot see is a node that stops being one
// later, so:
//   - a connection whose session became read-only is dropped when it is
//     released instead of being handed out again (readOnlySession);
//   - a dead node's connections fail their next query (an EOF or reset,
//     which closes them, and pgxpool drops closed connections), and idle
//     ones to an unreachable machine, which sends no reset, are found by
//     TCP keepalives within about 20 s rather than the kernel's two hours.
func followPrimary(cfg *pgxpool.Config) {
	cfg.AfterRelease = func(c *pgx.Conn) bool { return !readOnlySession(c.PgConn()) }
	// ConnectTimeout still bounds the dial: pgconn applies it to the context.
	dialer := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}}
	cfg.ConnConfig.DialFunc = dialer.DialContext
}

// readOnlySession says whether writes on this connection would fail with
// read_only_sql_transaction: it reached a hot standby, or its node was made
// read-only. PostgreSQL (14 and later) reports both settings to the client
// whenever they change, so this costs no round trip.
func readOnlySession(c *pgconn.PgConn) bool {
	return c.ParameterStatus("in_hot_standby") == "on" || c.ParameterStatus("default_transaction_read_only") == "on"
}

func newSessionLocker() (lock.SessionLocker, error) {
	return lock.NewPostgresSessionLocker()
}
