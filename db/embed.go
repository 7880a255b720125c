// Package db holds the SQL of the project: goose migrations (the schema's
// history), the current definition of every SQL function, and the queries
// sqlc compiles.
package db

import "embed"

// Migrations are the goose migrations, embedded so the binary migrates itself.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Functions are the SQL functions, one file each with CREATE OR REPLACE:
// the one current definition of each, applied after the migrations on
// every start (postgres.Migrate). A change to a function goes in its file,
// not in a new migration, so a reader finds each rule in one place.
//
//go:embed functions/*.sql
var Functions embed.FS
