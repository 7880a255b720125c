// Package devdb finds the PostgreSQL a developer's machine offers, in the
// order DESIGN.md gives under "Where PostgreSQL comes from", so that `make run`
// and `make test` work on a fresh machine that has nothing but Go.
//
// Production never uses this package: it is given DATABASE_URL.
package devdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
)

// Options say where to look for PostgreSQL and what to create there.
type Options struct {
	// EnvURL is DATABASE_URL (TEST_DATABASE_URL for tests). When non-empty it
	// is returned as-is: whoever set it knows best.
	EnvURL string
	// DataDir is the project-local state directory, e.g. "<repo>/.data". The
	// project-local cluster lives in DataDir/pg.
	DataDir string
	// DBName is the database to create (when missing) and use on whichever
	// server is found, e.g. "ldkbackup_dev".
	DBName string
	// Logger receives details a developer rarely needs; nil discards them.
	Logger *slog.Logger
	// Stdout is told what is being done (initdb, starting a server,
	// installing packages); nil discards it.
	Stdout io.Writer
	// AllowInstall permits `apt-get install postgresql` when no binaries
	// exist and the process runs as root on a Debian-like machine.
	AllowInstall bool

	// Knobs for this package's tests; the zero values are the real behaviour.
	// skipSharedServer goes straight to the project-local cluster;
	// findBinaries replaces the PATH and /usr/lib/postgresql search.
	skipSharedServer bool
	findBinaries     func(ctx context.Context, wantMajor int) (binaries, error)
}

// Resolve returns the URL of a database named opts.DBName that exists and
// answers, trying in order:
//
//  1. opts.EnvURL, when set;
//  2. a PostgreSQL already answering on 127.0.0.1:5432 (PGHOST, PGPORT,
//     PGUSER and PGPASSWORD honoured; user postgres, then the OS user);
//  3. a project-local cluster in DataDir/pg, created with the machine's own
//     initdb and started with its pg_ctl, or reused when it runs (as root,
//     both run as the postgres user, and the cluster moves to that user's
//     home when it cannot reach DataDir);
//  4. as 3, after `apt-get install postgresql` when there are no binaries,
//     opts.AllowInstall is set and this is root on a Debian-like machine.
//
// Otherwise the error says how to get PostgreSQL.
func Resolve(ctx context.Context, opts Options) (string, error) {
	if opts.EnvURL != "" {
		return opts.EnvURL, nil
	}
	if opts.DBName == "" {
		return "", errors.New("devdb: no database name given")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return "", err
	}

	if !opts.skipSharedServer {
		if url, ok := useSharedServer(ctx, opts); ok {
			return url, nil
		}
	}

	return useLocalCluster(ctx, opts)
}

// Stop stops the project-local cluster in dataDir if it runs. It does
// nothing when there is no cluster or it is already stopped.
func Stop(ctx context.Context, dataDir string) error {
	opts, err := Options{DataDir: dataDir}.withDefaults()
	if err != nil {
		return err
	}
	return stopLocalCluster(ctx, opts)
}

func (o Options) withDefaults() (Options, error) {
	if o.DataDir == "" {
		return o, errors.New("devdb: no data directory given")
	}
	abs, err := filepath.Abs(o.DataDir)
	if err != nil {
		return o, fmt.Errorf("devdb: data directory: %w", err)
	}
	o.DataDir = abs
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.findBinaries == nil {
		o.findBinaries = findBinaries
	}
	return o, nil
}

// noPostgresError is the last answer: nothing was found and nothing could be
// installed, so say exactly what the developer can do.
func noPostgresError() error {
	return errors.New(`no PostgreSQL found: nothing usable answers on 127.0.0.1:5432, and there are no initdb/pg_ctl binaries in PATH or /usr/lib/postgresql/*/bin to start a project-local server with. Do one of:
  - install the PostgreSQL server package (Debian/Ubuntu: sudo apt-get install postgresql; Fedora: sudo dnf install postgresql-server; macOS: brew install postgresql) and run this again;
  - set DATABASE_URL (TEST_DATABASE_URL for tests) to a database you have, e.g. postgres://user:password@127.0.0.1:5432/ldkbackup;
  - or run the server and PostgreSQL in containers: docker compose up`)
}
