package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"ldkbackup/db"
)

// functionsLockKey is the transaction-scoped advisory lock that makes
// replicas starting together apply the functions one after the other:
// two concurrent CREATE OR REPLACE of one function fail with "tuple
// concurrently updated". Any value other than goose's and housekeeping's.
const functionsLockKey = 7214630915237011

// Functions returns each embedded SQL function by name (its file name
// without .sql) with its definition.
func Functions() (map[string]string, error) {
	names, err := functionNames()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		b, err := fs.ReadFile(db.Functions, "functions/"+name+".sql")
		if err != nil {
			return nil, err
		}
		out[name] = string(b)
	}
	return out, nil
}

// functionNames returns the names of the embedded SQL functions, sorted.
func functionNames() ([]string, error) {
	entries, err := fs.ReadDir(db.Functions, "functions")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".sql"))
	}
	return names, nil
}

// applyFunctions (re)creates every function of db/functions in one
// transaction, so the database runs exactly this release's definitions
// whatever migrations brought it here, and a failure leaves the previous
// ones in place. Bodies are checked when called, not when created, so a
// function may name one created after it in the same transaction.
func applyFunctions(ctx context.Context, sqlDB *sql.DB) error {
	fns, err := Functions()
	if err != nil {
		return fmt.Errorf("functions: %w", err)
	}
	tx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("functions: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(functionsLockKey)); err != nil {
		return fmt.Errorf("functions: lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL check_function_bodies = off`); err != nil {
		return fmt.Errorf("functions: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(fns)) {
		if _, err := tx.ExecContext(ctx, fns[name]); err != nil {
			return fmt.Errorf("function %s: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("functions: %w", err)
	}
	return nil
}
