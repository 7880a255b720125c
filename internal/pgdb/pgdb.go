// Package pgdb creates and drops PostgreSQL databases for the tests
// (internal/pgtest), the development database (internal/devdb), the load
// benchmark and the drills: the one place a database name is quoted into a
// statement, since CREATE and DROP DATABASE take no parameters.
package pgdb

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Execer runs a statement; a pool or a connection (one to a database other
// than those it creates or drops).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Create creates database name as a copy of template ("": the server's
// default, template1) using strategy ("": the server's default; WAL_LOG or
// FILE_COPY, a keyword from the caller's code, never from input). Errors are
// the driver's, so callers can tell "already exists" (42P04) and "in use"
// (55006) apart.
func Create(ctx context.Context, db Execer, name, template, strategy string) error {
	stmt := "CREATE DATABASE " + Ident(name)
	if template != "" {
		stmt += " TEMPLATE " + Ident(template)
	}
	if strategy != "" {
		stmt += " STRATEGY " + strategy
	}
	_, err := db.Exec(ctx, stmt)
	return err
}

// Drop drops database name if it exists. With force, connections to it are
// ended first (a crashed server's, a test's); without, a database in use
// stays and Drop fails.
func Drop(ctx context.Context, db Execer, name string, force bool) error {
	stmt := "DROP DATABASE IF EXISTS " + Ident(name)
	if force {
		stmt += " WITH (FORCE)"
	}
	_, err := db.Exec(ctx, stmt)
	return err
}

// Ident quotes a database name for the statements Create and Drop do not
// cover (ALTER DATABASE).
func Ident(name string) string { return pgx.Identifier{name}.Sanitize() }
