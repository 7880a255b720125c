package devdb

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// preferredPort keeps the project-local server off 5432, where a system
	// server may come up later; the next free port up is taken when it is busy.
	preferredPort = 54329
	// superuser is the cluster's only role; trust auth, 127.0.0.1 only.
	superuser = "postgres"
	// serviceUser runs initdb and pg_ctl when we are root: both refuse to run
	// as root, and Debian's postgresql package creates this user.
	serviceUser = "postgres"
	// maxSocketPath is below the 108 bytes of sun_path, with room for the NUL.
	maxSocketPath = 100
)

var (
	errNoBinaries    = errors.New("no PostgreSQL binaries (initdb and pg_ctl) found")
	errNoServiceUser = fmt.Errorf("initdb and pg_ctl refuse to run as root, and there is no %q user to run them as: create it, run as another user, or set DATABASE_URL", serviceUser)
)

// cluster is the project-local PostgreSQL: a data directory and the
// binaries and OS user that run it.
type cluster struct {
	dir    string // PGDATA
	run    Runner // initdb and pg_ctl of bins, as the service user when we are root
	bins   binaries
	stdout io.Writer
}

// binaries is one installed PostgreSQL version.
type binaries struct {
	dir   string // holds initdb, pg_ctl and postgres
	major int
}

// useLocalCluster is step 3 (and 4, installing the binaries it needs when
// allowed): init the cluster once, start it unless it runs, and make sure
// opts.DBName exists in it.
func useLocalCluster(ctx context.Context, opts Options) (string, error) {
	port, err := startLocalCluster(ctx, opts)
	if err != nil {
		return "", err
	}
	dbURL := databaseURL("127.0.0.1", strconv.Itoa(port), superuser, opts.DBName)
	if err := ensureDatabase(ctx, dbURL); err != nil {
		return "", fmt.Errorf("project-local PostgreSQL on port %d: %w", port, err)
	}
	opts.Logger.InfoContext(ctx, "using the project-local PostgreSQL", "url", dbURL)
	return dbURL, nil
}

// startLocalCluster holds the data directory's lock while it installs,
// inits and starts, because several `go test` processes may get here at
// once, and only one of them may run apt-get or initdb.
func startLocalCluster(ctx context.Context, opts Options) (port int, err error) {
	unlock, err := lockDataDir(ctx, opts.DataDir)
	if err != nil {
		return 0, err
	}
	defer unlock()

	if err := ensureBinaries(ctx, opts); err != nil {
		return 0, err
	}
	c, err := locateCluster(ctx, opts)
	if err != nil {
		return 0, err
	}
	if err := c.findBinaries(ctx, opts); err != nil {
		return 0, err
	}
	if !c.initialized() {
		if err := c.init(ctx); err != nil {
			return 0, err
		}
	}
	running, err := c.running(ctx)
	if err != nil {
		return 0, err
	}
	if !running {
		if err := c.start(ctx); err != nil {
			return 0, err
		}
	}
	return c.port()
}

func stopLocalCluster(ctx context.Context, opts Options) error {
	if _, err := os.Stat(opts.DataDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := lockDataDir(ctx, opts.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	c, err := locateCluster(ctx, opts)
	if errors.Is(err, errNoServiceUser) {
		return nil // then root cannot have created a cluster
	}
	if err != nil {
		return err
	}
	if !c.initialized() {
		return nil
	}
	if err := c.findBinaries(ctx, opts); err != nil {
		return err
	}
	running, err := c.running(ctx)
	if err != nil || !running {
		return err
	}
	if out, err := c.run.Command(ctx, "pg_ctl", "stop", "-D", c.dir, "-m", "fast", "-w").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop %s: %w\n%s", c.dir, err, out)
	}
	return nil
}

// ensureBinaries installs PostgreSQL when there is none and that is
// allowed (step 4), and otherwise says how to get it (step 5). It runs
// before locateCluster, which as root needs the user the package creates.
func ensureBinaries(ctx context.Context, opts Options) error {
	_, err := opts.findBinaries(ctx, 0)
	if !errors.Is(err, errNoBinaries) {
		return err
	}
	if !opts.AllowInstall || !canInstall() {
		return noPostgresError()
	}
	if err := installPostgres(ctx, opts.Stdout); err != nil {
		return err
	}
	_, err = opts.findBinaries(ctx, 0)
	return err
}

// locateCluster finds where the cluster lives and who runs it.
func locateCluster(ctx context.Context, opts Options) (*cluster, error) {
	run, err := NewRunner("") // its binaries are found next, by findBinaries
	if err != nil {
		return nil, err
	}
	c := &cluster{run: run, stdout: opts.Stdout}
	dir, err := c.dataDir(ctx, opts.DataDir)
	if err != nil {
		return nil, err
	}
	c.dir = dir
	return c, nil
}

// findBinaries picks binaries that can run the cluster: the version that
// created it, or the newest for a new one.
func (c *cluster) findBinaries(ctx context.Context, opts Options) error {
	wantMajor := 0
	if b, err := os.ReadFile(filepath.Join(c.dir, "PG_VERSION")); err == nil {
		wantMajor, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	var err error
	c.bins, err = opts.findBinaries(ctx, wantMajor)
	c.run.binDir = c.bins.dir
	return err
}

// dataDir is dataDir/pg, unless we are root and the service user cannot
// reach it (a repository under /root, whose mode is 0700): then the cluster
// lives in that user's home, in a directory named after dataDir.
func (c *cluster) dataDir(ctx context.Context, dataDir string) (string, error) {
	local := filepath.Join(dataDir, "pg")
	if c.run.runAs == "" || c.run.Command(ctx, "test", "-x", dataDir).Run() == nil {
		return local, nil
	}
	u, err := user.Lookup(c.run.runAs)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(dataDir))
	dir := filepath.Join(u.HomeDir, "ldkbackup-dev-"+hex.EncodeToString(sum[:6]))
	if c.run.Command(ctx, "test", "-w", u.HomeDir).Run() != nil {
		return "", fmt.Errorf("the %s user, which runs PostgreSQL for root, can neither reach %s nor write its home %s: make %s searchable (chmod o+x on its parents), or set DATABASE_URL", c.run.runAs, dataDir, u.HomeDir, dataDir)
	}
	return dir, nil
}

func (c *cluster) initialized() bool {
	_, err := os.Stat(filepath.Join(c.dir, "PG_VERSION"))
	return err == nil
}

// init runs initdb and writes the settings that make this a private server:
// 127.0.0.1 only, its own port, its Unix socket inside its own directory
// (the default /var/run/postgresql is not writable by a developer).
func (c *cluster) init(ctx context.Context) error {
	fmt.Fprintf(c.stdout, "creating a project-local PostgreSQL %d cluster in %s (initdb)\n", c.bins.major, c.dir)
	if err := c.run.MakeOwnedDir(c.dir); err != nil {
		return err
	}
	if err := c.run.InitDB(ctx, c.dir); err != nil {
		return err
	}
	port, err := freePort(preferredPort)
	if err != nil {
		return err
	}
	socketDir := c.dir
	if len(filepath.Join(socketDir, ".s.PGSQL.54329")) > maxSocketPath {
		socketDir = "" // too long for a Unix socket: TCP only
	}
	return AppendConf(c.dir,
		"# Added by ldkbackup (internal/devdb): a private development server.",
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '"+socketDir+"'",
		"port = "+strconv.Itoa(port),
	)
}

// running asks pg_ctl, which knows a stale postmaster.pid from a live one.
func (c *cluster) running(ctx context.Context) (bool, error) {
	out, err := c.run.Command(ctx, "pg_ctl", "status", "-D", c.dir).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode() == 3: // "no server running"
		return false, nil
	default:
		return false, fmt.Errorf("pg_ctl status %s: %w\n%s", c.dir, err, out)
	}
}

// start starts the server on its configured port, or on another free one
// when something else has taken it since (another checkout's cluster that
// picked the same port at the same time, say).
func (c *cluster) start(ctx context.Context) error {
	logFile := filepath.Join(c.dir, "server.log")
	for attempt := 1; ; attempt++ {
		port, err := c.port()
		if err != nil {
			return err
		}
		if !portFree(port) {
			if port, err = freePort(port + 1); err != nil {
				return err
			}
			if err := AppendConf(c.dir, "port = "+strconv.Itoa(port)); err != nil {
				return err
			}
		}
		fmt.Fprintf(c.stdout, "starting the project-local PostgreSQL on 127.0.0.1:%d (log: %s)\n", port, logFile)
		out, err := c.run.Command(ctx, "pg_ctl", "start", "-D", c.dir, "-l", logFile, "-w", "-t", "60").CombinedOutput()
		if err == nil {
			return nil
		}
		if attempt < 3 && !portFree(port) {
			continue // lost the port in the meantime: pick another
		}
		return fmt.Errorf("pg_ctl start %s: %w\n%s\nlast lines of %s:\n%s", c.dir, err, out, logFile, tail(logFile, 20))
	}
}

// port reads the last "port =" line of postgresql.conf, as PostgreSQL does.
func (c *cluster) port() (int, error) {
	confPath := filepath.Join(c.dir, "postgresql.conf")
	f, err := os.Open(confPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	port := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(key) == "port" {
			value, _, _ = strings.Cut(value, "#")
			port, _ = strconv.Atoi(strings.TrimSpace(value))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if port == 0 {
		return 0, fmt.Errorf("%s sets no port; delete %s to have it created again", confPath, c.dir)
	}
	return port, nil
}

// findBinaries looks for initdb and pg_ctl side by side in PATH and in
// Debian's /usr/lib/postgresql/<version>/bin, and returns the version
// wantMajor (the one that created an existing cluster) or else the newest.
func findBinaries(ctx context.Context, wantMajor int) (binaries, error) {
	var dirs []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = append(dirs, globbed...)

	var best binaries
	seen := map[string]bool{}
	for _, dir := range dirs {
		// PATH often holds symlinks into /usr/lib/postgresql/<version>/bin;
		// resolve them so initdb finds its postgres beside it.
		real, err := filepath.EvalSymlinks(filepath.Join(dir, "pg_ctl"))
		if err != nil {
			continue
		}
		dir = filepath.Dir(real)
		if seen[dir] || !isExecutable(filepath.Join(dir, "initdb")) {
			continue
		}
		seen[dir] = true
		major, err := majorVersion(ctx, filepath.Join(dir, "pg_ctl"))
		if err != nil {
			continue
		}
		if major == wantMajor {
			return binaries{dir: dir, major: major}, nil
		}
		if major > best.major {
			best = binaries{dir: dir, major: major}
		}
	}
	switch {
	case best.dir == "":
		return binaries{}, errNoBinaries
	case wantMajor != 0:
		return binaries{}, fmt.Errorf("the project-local cluster was created by PostgreSQL %d, but only PostgreSQL %d is installed: install PostgreSQL %d, or delete the cluster (it is only development data) to have it created again", wantMajor, best.major, wantMajor)
	default:
		return best, nil
	}
}

// majorVersion parses "pg_ctl (PostgreSQL) 15.20 (Debian ...)".
func majorVersion(ctx context.Context, pgCtl string) (int, error) {
	out, err := exec.CommandContext(ctx, pgCtl, "--version").Output()
	if err != nil {
		return 0, err
	}
	_, version, ok := strings.Cut(string(out), "(PostgreSQL) ")
	if !ok {
		return 0, fmt.Errorf("unexpected %s --version: %q", pgCtl, out)
	}
	major, _, _ := strings.Cut(version, ".")
	return strconv.Atoi(strings.TrimSpace(major))
}

// lockDataDir takes an exclusive flock on dataDir/pg.lock, so that one
// process at a time inits, starts or stops the cluster. The kernel drops the
// lock if the process dies. Waiting stops when ctx ends.
func lockDataDir(ctx context.Context, dataDir string) (unlock func(), err error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dataDir, "pg.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s: %w", f.Name(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePort returns the first port from start up that nothing listens on.
func freePort(start int) (int, error) {
	for port := start; port < start+100 && port < 65536; port++ {
		if portFree(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port on 127.0.0.1 from %d up", start)
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// shellQuote quotes words for sh -c, for su when runuser is missing.
func shellQuote(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}
