// Package db holds the SQL of the project: goose migrations (the only schema
// source, also read by sqlc) and the queries sqlc compiles.
package db

import "embed"

// Migrations are the goose migrations, embedded so the binary migrates itself.
//
//go:embed migrations/*.sql
var Migrations embed.FS
