package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ldkbackup/internal/serverproc"
)

// cluster is a PostgreSQL of the drills' own: its data directory, port and
// socket directory are private, so restarting or crashing it touches nobody
// else's database (never the shared one on 5432).
type cluster struct {
	binDir  string // holds initdb, pg_ctl, postgres
	dir     string // parent of data/ and socket/, owned by runAs
	port    int
	runAs   string // "postgres" when we are root (initdb and pg_ctl refuse root), else ""
	logPath string
}

// serviceUser runs initdb and pg_ctl when the drill runs as root.
const serviceUser = "postgres"

// newCluster runs initdb in a new directory under parent and writes the
// settings of a private, loopback-only server. Durability settings stay at
// PostgreSQL's defaults (fsync on, full_page_writes on): the drills test
// that an acknowledged write survives a crash.
func newCluster(ctx context.Context, parent string) (*cluster, error) {
	binDir, err := findPostgresBinaries()
	if err != nil {
		return nil, err
	}
	port, err := serverproc.FreePort()
	if err != nil {
		return nil, err
	}
	// The log lives beside the data so that it outlives destroy.
	c := &cluster{binDir: binDir, dir: filepath.Join(parent, "pg"), port: port, logPath: filepath.Join(parent, "postgres.log")}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup(serviceUser); err != nil {
			return nil, fmt.Errorf("running as root, initdb and pg_ctl need a %q user: %w", serviceUser, err)
		}
		c.runAs = serviceUser
	}
	for _, d := range []string{c.dir, c.dataDir(), c.socketDir()} {
		if err := c.makeOwnedDir(d); err != nil {
			return nil, err
		}
	}
	if err := c.makeOwnedFile(c.logPath); err != nil {
		return nil, err
	}
	if out, err := c.command(ctx, "initdb", "-D", c.dataDir(), "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	conf := strings.Join([]string{
		"",
		"# ldkbackup cmd/drill: a private cluster, deleted when the drills end.",
		"listen_addresses = '127.0.0.1'",
		"port = " + strconv.Itoa(port),
		"unix_socket_directories = '" + c.socketDir() + "'",
		"max_connections = 200",
		"",
	}, "\n")
	f, err := os.OpenFile(filepath.Join(c.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(conf)
	if err := errors.Join(err, f.Close()); err != nil {
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
	if out, err := c.command(ctx, "pg_ctl", args...).CombinedOutput(); err != nil {
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
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return c.url(name), nil
}

// command runs one of the cluster's binaries, as the service user when we
// are root (runuser, as internal/devdb does).
func (c *cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.binDir, name)
	var cmd *exec.Cmd
	if c.runAs == "" {
		cmd = exec.CommandContext(ctx, path, args...)
	} else {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	}
	// The service user may not be allowed into our working directory.
	cmd.Dir = "/"
	return cmd
}

// makeOwnedDir creates dir (mode 0700, as initdb wants) owned by whoever
// runs PostgreSQL.
func (c *cluster) makeOwnedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return c.chown(dir)
}

// makeOwnedFile creates an empty file the cluster's user can write.
func (c *cluster) makeOwnedFile(path string) error {
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return err
	}
	return c.chown(path)
}

func (c *cluster) chown(path string) error {
	if c.runAs == "" {
		return nil
	}
	u, err := user.Lookup(c.runAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// findPostgresBinaries picks PG_BIN when set, else the newest
// /usr/lib/postgresql/<major>/bin, else the directory of pg_ctl in PATH.
func findPostgresBinaries() (string, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real), nil
		}
	}
	return "", errors.New("no PostgreSQL binaries (initdb, pg_ctl): install PostgreSQL or set PG_BIN")
}

// majorOf reads 15 from /usr/lib/postgresql/15/bin.
func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}
