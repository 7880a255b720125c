// Package haformation runs a pg_auto_failover formation on this machine: a
// monitor, a primary and a secondary, each its own PostgreSQL on a free
// loopback port, with synchronous replication and automatic failover. It is
// for development (`make ha-up`, cmd/ha) and the failover drill; production
// runs the same three roles on three machines (docs/deployment.md) and
// never links this package.
//
// Everything lives in one directory: data directories, keeper logs, and
// pg_autoctl's own configuration and state (its XDG directories are pointed
// there), so removing the directory removes the formation.
package haformation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"ldkbackup/internal/devdb"
)

// DBName is the database pg_auto_failover creates on the data nodes and
// the server uses.
const DBName = "ldkbackup"

// stateFile records the formation's nodes, so that ha-down and a later
// ha-up find what an earlier ha-up made.
const stateFile = "formation.json"

// Node is one PostgreSQL of the formation and the pg_autoctl keeper that
// runs it.
type Node struct {
	Name   string `json:"name"`
	PGData string `json:"pgdata"`
	Port   int    `json:"port"`
	Log    string `json:"log"`
}

// Formation is a local monitor and two data nodes.
type Formation struct {
	Dir     string `json:"dir"`
	BinDir  string `json:"bin_dir"` // PostgreSQL's bin: pg_ctl, pg_config
	Autoctl string `json:"pg_autoctl"`
	Monitor Node   `json:"monitor"`
	Nodes   []Node `json:"nodes"`

	run devdb.Runner
	out io.Writer
}

// Options say where the formation lives and what may be done to get it.
type Options struct {
	Dir string // e.g. <repo>/.data/ha
	// AllowInstall permits apt-get to install pg_auto_failover when it is
	// missing, as root on a Debian-like machine.
	AllowInstall bool
	Stdout       io.Writer // told what is being done; nil discards it
}

// Binaries returns the PostgreSQL bin directory (pg_ctl and friends), the
// pg_autoctl program (pg-auto-failover-cli), and the installed PostgreSQL
// major version, whose auto-failover package (the monitor's extension) is
// the one to install when either is missing.
func Binaries(ctx context.Context) (binDir, autoctl string, major int, err error) {
	binDir, major, err = devdb.Binaries(ctx)
	if err != nil {
		return "", "", 0, err
	}
	if autoctl, err = exec.LookPath("pg_autoctl"); err != nil {
		autoctl = filepath.Join(binDir, "pg_autoctl")
		if _, err := os.Stat(autoctl); err != nil {
			return binDir, "", major, fmt.Errorf("%w: no pg_autoctl in PATH or %s", ErrNoAutoctl, binDir)
		}
	}
	share, err := exec.CommandContext(ctx, filepath.Join(binDir, "pg_config"), "--sharedir").Output()
	if err != nil {
		return binDir, "", major, fmt.Errorf("pg_config --sharedir: %w", err)
	}
	control := filepath.Join(strings.TrimSpace(string(share)), "extension", "pgautofailover.control")
	if _, err := os.Stat(control); err != nil {
		return binDir, "", major, fmt.Errorf("%w: the monitor's extension %s is missing", ErrNoAutoctl, control)
	}
	return binDir, autoctl, major, nil
}

// ErrNoAutoctl: pg_auto_failover is not installed.
var ErrNoAutoctl = errors.New("pg_auto_failover is not installed")

// ensureBinaries finds pg_autoctl, installing pg_auto_failover when that is
// allowed and possible, saying so first.
func ensureBinaries(ctx context.Context, opts Options) (binDir, autoctl string, err error) {
	binDir, autoctl, major, err := Binaries(ctx)
	if !errors.Is(err, ErrNoAutoctl) {
		return binDir, autoctl, err
	}
	pkgs := []string{fmt.Sprintf("postgresql-%d-auto-failover", major), "pg-auto-failover-cli"}
	if !opts.AllowInstall || !devdb.CanInstall() {
		return "", "", fmt.Errorf("%w for PostgreSQL %d: install it (Debian/Ubuntu: sudo apt-get install %s; elsewhere see https://pg-auto-failover.readthedocs.io), then run this again", ErrNoAutoctl, major, strings.Join(pkgs, " "))
	}
	fmt.Fprintf(opts.Stdout, "pg_auto_failover is not installed; installing %s with apt-get (running as root on a Debian-like machine)\n", strings.Join(pkgs, " "))
	if err := devdb.AptInstall(ctx, opts.Stdout, pkgs...); err != nil {
		return "", "", err
	}
	binDir, autoctl, _, err = Binaries(ctx)
	return binDir, autoctl, err
}

// Up creates the formation in opts.Dir, or starts the keepers of one an
// earlier Up made, and waits until it is synchronous.
func Up(ctx context.Context, opts Options) (*Formation, error) {
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	binDir, autoctl, err := ensureBinaries(ctx, opts)
	if err != nil {
		return nil, err
	}
	run, err := devdb.NewRunner(binDir)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if f, err := Open(dir, opts.Stdout); err == nil {
		fmt.Fprintf(opts.Stdout, "the formation in %s exists; starting its keepers\n", dir)
		for _, n := range f.all() {
			if err := f.Start(ctx, n); err != nil {
				return nil, err
			}
		}
		return f, f.WaitSynchronous(ctx)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f := &Formation{Dir: dir, BinDir: binDir, Autoctl: autoctl, run: run, out: opts.Stdout}
	if err := f.create(ctx); err != nil {
		return f, err
	}
	return f, f.WaitSynchronous(ctx)
}

// Open returns the formation an earlier Up made in dir; an error wrapping
// os.ErrNotExist when there is none.
func Open(dir string, out io.Writer) (*Formation, error) {
	if out == nil {
		out = io.Discard
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	f := &Formation{out: out}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	if f.run, err = devdb.NewRunner(f.BinDir); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Formation) create(ctx context.Context) error {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return err
	}
	// The keepers, which run as the postgres user when we are root, write
	// their configuration, state and logs under Dir.
	if err := f.run.Chown(f.Dir); err != nil {
		return err
	}
	if err := f.run.Command(ctx, "test", "-w", f.Dir).Run(); err != nil {
		return fmt.Errorf("the user that runs PostgreSQL cannot write %s: make its parents searchable (chmod o+x) or use another directory", f.Dir)
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	f.Monitor = f.node("monitor", ports[0])
	f.Nodes = []Node{f.node("node1", ports[1]), f.node("node2", ports[2])}
	if err := f.save(); err != nil {
		return err
	}

	fmt.Fprintf(f.out, "creating the monitor on 127.0.0.1:%d\n", f.Monitor.Port)
	if err := f.autoctl(ctx, "create", "monitor", "--pgdata", f.Monitor.PGData, "--pgport", strconv.Itoa(f.Monitor.Port),
		"--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--pgctl", filepath.Join(f.BinDir, "pg_ctl")); err != nil {
		return err
	}
	if err := f.Start(ctx, f.Monitor); err != nil {
		return err
	}
	// Created one after the other: the secondary is a base backup of the
	// primary, which the primary's running keeper lets it take.
	for i, n := range f.Nodes {
		fmt.Fprintf(f.out, "creating %s on 127.0.0.1:%d\n", n.Name, n.Port)
		if err := f.autoctl(ctx, "create", "postgres", "--pgdata", n.PGData, "--pgport", strconv.Itoa(n.Port),
			"--hostname", "127.0.0.1", "--name", n.Name, "--dbname", DBName, "--monitor", f.MonitorURL(),
			"--auth", "trust", "--no-ssl", "--pgctl", filepath.Join(f.BinDir, "pg_ctl")); err != nil {
			return err
		}
		if err := f.Start(ctx, n); err != nil {
			return err
		}
		if i == 0 {
			if err := f.waitFor(ctx, 2*time.Minute, "the first node to be a primary", func(states []NodeState) bool {
				return len(states) == 1 && states[0].Reported == "single" && states[0].Goal == "single"
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *Formation) node(name string, port int) Node {
	return Node{Name: name, PGData: filepath.Join(f.Dir, name), Port: port, Log: filepath.Join(f.Dir, name+".log")}
}

func (f *Formation) all() []Node { return append([]Node{f.Monitor}, f.Nodes...) }

func (f *Formation) save() error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(f.Dir, stateFile), append(b, '\n'), 0o644)
}

// env points pg_autoctl's configuration, state and runtime files into Dir
// instead of the postgres user's home and /tmp.
func (f *Formation) env() []string {
	return append(os.Environ(),
		"XDG_CONFIG_HOME="+filepath.Join(f.Dir, "xdg", "config"),
		"XDG_DATA_HOME="+filepath.Join(f.Dir, "xdg", "data"),
		"XDG_RUNTIME_DIR="+filepath.Join(f.Dir, "xdg", "run"),
		"PG_CONFIG="+filepath.Join(f.BinDir, "pg_config"),
	)
}

func (f *Formation) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := f.run.Command(ctx, f.Autoctl, args...)
	cmd.Env = f.env()
	return cmd
}

// autoctl runs one pg_autoctl command to completion.
func (f *Formation) autoctl(ctx context.Context, args ...string) error {
	out, err := f.command(ctx, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_autoctl %s: %w\n%s", strings.Join(args[:min(2, len(args))], " "), err, tailLines(out, 30))
	}
	return nil
}

// Start runs node's keeper (pg_autoctl run), which starts its PostgreSQL,
// in a session of its own so that it outlives this process, with its
// output appended to node.Log. A keeper already running is left alone.
func (f *Formation) Start(ctx context.Context, n Node) error {
	if f.KeeperRunning(n) {
		return nil
	}
	logFile, err := os.OpenFile(n.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// Not tied to ctx: the keeper must survive this command.
	cmd := f.command(context.Background(), "run", "--pgdata", n.PGData)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the keeper of %s: %w", n.Name, err)
	}
	pid := cmd.Process.Pid
	// Reaped when it ends, so that a killed keeper does not linger as a
	// zombie in its process group (KeeperRunning would still see it). When
	// this process exits first, init adopts and reaps it.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(f.pidFile(n), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return err
	}
	return waitUntil(ctx, time.Minute, func() bool { return postgresAnswers(n.Port) }, func() error {
		return fmt.Errorf("%s did not answer on 127.0.0.1:%d within a minute; its log %s ends:\n%s", n.Name, n.Port, n.Log, tailFile(n.Log, 20))
	})
}

// pidFile holds the process group of node's keeper, as Start made it.
func (f *Formation) pidFile(n Node) string { return filepath.Join(f.Dir, n.Name+".keeper.pid") }

// KeeperRunning says whether node's keeper started by Start still runs.
func (f *Formation) KeeperRunning(n Node) bool {
	pgid := f.keeperGroup(n)
	return pgid > 0 && syscall.Kill(-pgid, 0) == nil
}

func (f *Formation) keeperGroup(n Node) int {
	b, err := os.ReadFile(f.pidFile(n))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Kill loses node as a machine is lost: SIGKILL to its keeper and every
// process of its session (the supervisor, its services, PostgreSQL and
// its backends), and to the postmaster in case it left the session. No
// shutdown, no checkpoint.
func (f *Formation) Kill(n Node) error {
	var errs []error
	if pgid := f.keeperGroup(n); pgid > 0 {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	if pid := postmasterPID(n.PGData); pid > 0 {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Gone waits until nothing answers on node's port any more.
func (f *Formation) Gone(ctx context.Context, n Node) error {
	return waitUntil(ctx, 30*time.Second, func() bool { return !postgresAnswers(n.Port) && !f.KeeperRunning(n) }, func() error {
		return fmt.Errorf("%s still runs 30 s after it was killed", n.Name)
	})
}

func postmasterPID(pgdata string) int {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// Down stops every keeper (and so its PostgreSQL) and removes the
// directory.
func (f *Formation) Down(ctx context.Context) error {
	var errs []error
	for _, n := range append(append([]Node{}, f.Nodes...), f.Monitor) {
		if !f.KeeperRunning(n) {
			continue
		}
		fmt.Fprintf(f.out, "stopping %s\n", n.Name)
		if err := f.autoctl(ctx, "stop", "--pgdata", n.PGData); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := waitUntil(ctx, time.Minute, func() bool { return !f.KeeperRunning(n) }, func() error {
			return fmt.Errorf("%s's keeper still runs a minute after pg_autoctl stop", n.Name)
		}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Keep the data of a formation that would not stop: something
		// still uses it.
		return errors.Join(errs...)
	}
	fmt.Fprintf(f.out, "removing %s\n", f.Dir)
	return os.RemoveAll(f.Dir)
}

// Destroy is Down for a formation that is thrown away: SIGKILL, then
// remove the directory.
func (f *Formation) Destroy() error {
	var errs []error
	for _, n := range f.all() {
		errs = append(errs, f.Kill(n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range f.all() {
		errs = append(errs, f.Gone(ctx, n))
	}
	return errors.Join(append(errs, os.RemoveAll(f.Dir))...)
}

// MonitorURL is the monitor's database, as the keepers reach it.
func (f *Formation) MonitorURL() string {
	return fmt.Sprintf("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable", f.Monitor.Port)
}

// URL is the multi-host DATABASE_URL of the formation: whichever node is
// the primary takes the connections.
func (f *Formation) URL() string {
	hosts := make([]string, len(f.Nodes))
	for i, n := range f.Nodes {
		hosts[i] = "127.0.0.1:" + strconv.Itoa(n.Port)
	}
	return fmt.Sprintf("postgres://postgres@%s/%s?target_session_attrs=read-write&sslmode=disable", strings.Join(hosts, ","), DBName)
}

// NodeURL is the URL of the database on one node.
func (f *Formation) NodeURL(n Node) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=5", n.Port, DBName)
}

// NodeState is what the monitor says about one data node.
type NodeState struct {
	Name     string
	Port     int
	Reported string // the state the node's keeper reported
	Goal     string // the state the monitor assigned it
	Healthy  bool   // the monitor's health check reaches its PostgreSQL
}

// States asks the monitor about the data nodes.
func (f *Formation) States(ctx context.Context) ([]NodeState, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pg_auto_failover?sslmode=disable", f.Monitor.Port))
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT nodename, nodeport, reportedstate::text, goalstate::text, health = 1
		FROM pgautofailover.node WHERE formationid = 'default' ORDER BY nodeid`)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (NodeState, error) {
		var s NodeState
		err := r.Scan(&s.Name, &s.Port, &s.Reported, &s.Goal, &s.Healthy)
		return s, err
	})
}

// Writable says whether the monitor has s as a settled primary that takes
// writes: "primary" with a synchronous standby, or "wait_primary" while it
// has none (it then commits alone).
func (s NodeState) Writable() bool {
	return s.Reported == s.Goal && (s.Reported == "primary" || s.Reported == "wait_primary")
}

// Primary returns the node the monitor has as a settled, writable primary.
func (f *Formation) Primary(ctx context.Context) (Node, error) {
	states, err := f.States(ctx)
	if err != nil {
		return Node{}, err
	}
	for _, s := range states {
		if s.Writable() {
			return f.byPort(s.Port)
		}
	}
	return Node{}, fmt.Errorf("no settled primary: %v", states)
}

func (f *Formation) byPort(port int) (Node, error) {
	for _, n := range f.Nodes {
		if n.Port == port {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("the monitor names a node on port %d that is not ours", port)
}

// Synchronous says whether the formation is in its synchronous state: one
// primary and one secondary, both settled, and the primary's
// synchronous_standby_names naming a standby that streams as a
// synchronous one (sync or quorum).
func (f *Formation) Synchronous(ctx context.Context) (bool, string, error) {
	states, err := f.States(ctx)
	if err != nil {
		return false, "", err
	}
	settled := map[string]int{}
	var primary Node
	for _, s := range states {
		if s.Reported == s.Goal {
			settled[s.Reported]++
		}
		if s.Reported == "primary" && s.Goal == "primary" {
			primary, _ = f.byPort(s.Port)
		}
	}
	if settled["primary"] != 1 || settled["secondary"] != 1 {
		return false, fmt.Sprint(states), nil
	}
	rep, err := ReplicationOf(ctx, f.NodeURL(primary))
	if err != nil {
		return false, "", err
	}
	return rep.Synchronous(), rep.String(), nil
}

// WaitSynchronous waits up to three minutes for the synchronous state.
func (f *Formation) WaitSynchronous(ctx context.Context) error {
	fmt.Fprintln(f.out, "waiting for a primary and a synchronous secondary")
	return f.waitFor(ctx, 3*time.Minute, "a synchronous formation", nil)
}

// waitFor waits until ok(states), or with a nil ok until Synchronous.
func (f *Formation) waitFor(ctx context.Context, limit time.Duration, what string, ok func([]NodeState) bool) error {
	var last string
	err := waitUntil(ctx, limit, func() bool {
		if ok == nil {
			sync, detail, err := f.Synchronous(ctx)
			last = detail
			if err != nil {
				last = err.Error()
			}
			return sync
		}
		states, err := f.States(ctx)
		last = fmt.Sprint(states)
		if err != nil {
			last = err.Error()
		}
		return err == nil && ok(states)
	}, func() error { return fmt.Errorf("no %s within %s; last seen: %s", what, limit, last) })
	return err
}

// WaitState waits until the monitor's states satisfy ok.
func (f *Formation) WaitState(ctx context.Context, limit time.Duration, what string, ok func([]NodeState) bool) error {
	return f.waitFor(ctx, limit, what, ok)
}

// Switchover asks the monitor for a planned switchover (pg_autoctl perform
// switchover) and returns when pg_autoctl says it is done.
func (f *Formation) Switchover(ctx context.Context) error {
	return f.autoctl(ctx, "perform", "switchover", "--pgdata", f.Monitor.PGData, "--formation", "default", "--group", "0")
}

// SetReplicationQuorum sets whether node counts as a synchronous standby
// (pg_autoctl set node replication-quorum): false makes the primary commit
// without waiting for it.
func (f *Formation) SetReplicationQuorum(ctx context.Context, n Node, on bool) error {
	return f.autoctl(ctx, "set", "node", "replication-quorum", strconv.FormatBool(on), "--pgdata", n.PGData)
}

// Replication is what a primary says about its synchronous replication.
type Replication struct {
	SynchronousCommit       string
	SynchronousStandbyNames string
	// Standbys maps each connected standby's application_name to its
	// sync_state (async, potential, sync, quorum).
	Standbys map[string]string
}

// ReplicationOf reads the replication settings of the node at url.
func ReplicationOf(ctx context.Context, url string) (Replication, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return Replication{}, err
	}
	defer conn.Close(ctx)
	r := Replication{Standbys: map[string]string{}}
	if err := conn.QueryRow(ctx, `SELECT current_setting('synchronous_commit'), current_setting('synchronous_standby_names')`).Scan(&r.SynchronousCommit, &r.SynchronousStandbyNames); err != nil {
		return r, err
	}
	rows, err := conn.Query(ctx, `SELECT application_name, sync_state FROM pg_stat_replication`)
	if err != nil {
		return r, err
	}
	for rows.Next() {
		var name, state string
		if err := rows.Scan(&name, &state); err != nil {
			return r, err
		}
		r.Standbys[name] = state
	}
	return r, rows.Err()
}

// Synchronous: a commit waits for a standby.
func (r Replication) Synchronous() bool {
	if r.SynchronousStandbyNames == "" || r.SynchronousCommit == "off" || r.SynchronousCommit == "local" {
		return false
	}
	for _, s := range r.Standbys {
		if s == "sync" || s == "quorum" {
			return true
		}
	}
	return false
}

func (r Replication) String() string {
	return fmt.Sprintf("synchronous_commit=%s synchronous_standby_names=%q standbys=%v", r.SynchronousCommit, r.SynchronousStandbyNames, r.Standbys)
}

// waitUntil polls cond every 100 ms until it holds, limit passes (fail's
// error) or ctx ends.
func waitUntil(ctx context.Context, limit time.Duration, cond func() bool, fail func() error) error {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fail()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func postgresAnswers(port int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port))
	if err != nil {
		return false
	}
	_ = conn.Close(ctx)
	return true
}

// freePorts asks the kernel for n distinct free loopback ports, holding
// each until all are found so that none is handed out twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return tailLines(b, n)
}

func tailLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
