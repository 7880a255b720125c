package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"ldkbackup/internal/devdb"
	"ldkbackup/internal/pgdb"
	"ldkbackup/internal/serverproc"
)

// cluster is a PostgreSQL of the drills' own: its data directory, port and
// socket directory are private, so restarting or crashing it touches nobody
// else's database (never the shared one on 5432).
type cluster struct {
	run     devdb.Runner // initdb and pg_ctl, as the postgres user when we are root
	dir     string       // parent of data/ and socket/, owned by whoever runs PostgreSQL
	port    int
	logPath string
}

// newCluster runs initdb in a new directory under parent and writes the
// settings of a private, loopback-only server. Durability settings stay at
// PostgreSQL's defaults (fsync on, full_page_writes on): the drills test
// that an acknowledged write survives a crash.
func newCluster(ctx context.Context, parent string) (*cluster, error) {
	binDir := os.Getenv("PG_BIN")
	if binDir == "" {
		var err error
		if binDir, _, err = devdb.Binaries(ctx); err != nil {
			return nil, fmt.Errorf("%w: install PostgreSQL or set PG_BIN", err)
		}
	}
	run, err := devdb.NewRunner(binDir)
	if err != nil {
		return nil, err
	}
	port, err := serverproc.FreePort()
	if err != nil {
		return nil, err
	}
	// The log lives beside the data so that it outlives destroy.
	c := &cluster{run: run, dir: filepath.Join(parent, "pg"), port: port, logPath: filepath.Join(parent, "postgres.log")}
	for _, d := range []string{c.dir, c.dataDir(), c.socketDir()} {
		if err := run.MakeOwnedDir(d); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(c.logPath, nil, 0o644); err != nil {
		return nil, err
	}
	if err := run.Chown(c.logPath); err != nil {
		return nil, err
	}
	if err := run.InitDB(ctx, c.dataDir(), "--no-sync"); err != nil {
		return nil, err
	}
	if err := devdb.AppendConf(c.dataDir(),
		"# ldkbackup cmd/drill: a private cluster, deleted when the drills end.",
		"listen_addresses = '127.0.0.1'",
		"port = "+strconv.Itoa(port),
		"unix_socket_directories = '"+c.socketDir()+"'",
		"max_connections = 200",
	); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cluster) dataDir() string   { return filepath.Join(c.dir, "data") }
func (c *cluster) socketDir() string { return filepath.Join(c.dir, "socket") }

// url is the URL of database name on this cluster.
func (c *cluster) url(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

func (c *cluster) start(ctx context.Context) error {
	return c.pgCtl(ctx, "start", "-l", c.logPath)
}

// stop shuts the cluster down with mode "fast" (sessions are terminated
// and a checkpoint is written) or "immediate" (every process is killed; the
// next start replays the WAL, as after a power cut).
func (c *cluster) stop(ctx context.Context, mode string) error {
	return c.pgCtl(ctx, "stop", "-m", mode)
}

// restart is pg_ctl restart: stop with mode, then start again at once.
func (c *cluster) restart(ctx context.Context, mode string) error {
	return c.pgCtl(ctx, "restart", "-m", mode, "-l", c.logPath)
}

func (c *cluster) pgCtl(ctx context.Context, args ...string) error {
	args = append([]string{args[0], "-D", c.dataDir(), "-w", "-t", "120"}, args[1:]...)
	if out, err := c.run.Command(ctx, "pg_ctl", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", args[0], err, out)
	}
	return nil
}

// destroy stops the cluster (immediately: its data is thrown away) and
// deletes its directory. It uses its own context so that it still runs
// after the drills were interrupted.
func (c *cluster) destroy() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stopErr error
	if _, err := os.Stat(filepath.Join(c.dataDir(), "postmaster.pid")); err == nil {
		stopErr = c.stop(ctx, "immediate")
	}
	return errors.Join(stopErr, os.RemoveAll(c.dir))
}

// createDatabase creates a database for one drill.
func (c *cluster) createDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if err := pgdb.Create(ctx, conn, name, "", ""); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return c.url(name), nil
}
