package devdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Runner runs PostgreSQL's programs (initdb, pg_ctl, postgres) from one
// installation, as the service user when we are root: both refuse to run as
// root. The project-local cluster uses it, and so do the reliability drills
// for the private cluster they crash and restart.
type Runner struct {
	binDir string // holds initdb, pg_ctl and postgres
	runAs  string // OS user to run them as; "" for ourselves
}

// NewRunner returns a Runner of the binaries in binDir, as the service user
// when we are root.
func NewRunner(binDir string) (Runner, error) {
	r := Runner{binDir: binDir}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup(serviceUser); err != nil {
			return Runner{}, errNoServiceUser
		}
		r.runAs = serviceUser
	}
	return r, nil
}

// Binaries returns the directory and major version of the newest installed
// PostgreSQL with initdb and pg_ctl (PATH, then /usr/lib/postgresql/*/bin).
func Binaries(ctx context.Context) (dir string, major int, err error) {
	b, err := findBinaries(ctx, 0)
	return b.dir, b.major, err
}

// Command runs one of the installation's programs (initdb, pg_ctl,
// postgres) or any other program by name, as the service user when we are
// root.
func (r Runner) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := name
	if name == "initdb" || name == "pg_ctl" || name == "postgres" {
		path = filepath.Join(r.binDir, name)
	}
	var cmd *exec.Cmd
	switch runuser, err := exec.LookPath("runuser"); {
	case r.runAs == "":
		cmd = exec.CommandContext(ctx, path, args...)
	case err == nil:
		cmd = exec.CommandContext(ctx, runuser, append([]string{"-u", r.runAs, "--", path}, args...)...)
	default:
		cmd = exec.CommandContext(ctx, "su", "-s", "/bin/sh", "-c", shellQuote(append([]string{path}, args...)), r.runAs)
	}
	// The service user may not be allowed into our working directory, and
	// initdb fails when it cannot read it.
	cmd.Dir = "/"
	return cmd
}

// MakeOwnedDir creates dir with the mode initdb wants (0700), owned by
// whoever runs PostgreSQL.
func (r Runner) MakeOwnedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return r.Chown(dir)
}

// Chown gives path to whoever runs PostgreSQL.
func (r Runner) Chown(path string) error {
	if r.runAs == "" {
		return nil
	}
	u, err := user.Lookup(r.runAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("give %s to the %s user: %w", path, r.runAs, err)
	}
	return nil
}

// InitDB creates a cluster in dataDir, which must exist and belong to
// whoever runs PostgreSQL (MakeOwnedDir): superuser "postgres" with trust
// authentication, UTF-8 and no locale. extra goes to initdb as it is
// (--no-sync for a cluster that is thrown away).
func (r Runner) InitDB(ctx context.Context, dataDir string, extra ...string) error {
	args := append([]string{"-D", dataDir, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--no-locale"}, extra...)
	if out, err := r.Command(ctx, "initdb", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", dataDir, err, out)
	}
	return nil
}

// AppendConf adds lines to the postgresql.conf of the cluster in dataDir;
// a setting written last wins over initdb's.
func AppendConf(dataDir string, lines ...string) error {
	f, err := os.OpenFile(filepath.Join(dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, "\n"+strings.Join(lines, "\n")+"\n")
	return errors.Join(err, f.Close())
}
