// Command drill runs the reliability drills (make drill): real server
// processes against a PostgreSQL cluster of its own, which the drills
// restart, crash and fill. It prints one JSON line per drill with its
// figures and exits 1 when any drill finds a promise broken.
// docs/reliability-drills.md describes each drill and what it promises.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/config"
	"ldkbackup/internal/serverproc"
)

// drill is one scenario. It returns its figures (printed as JSON) and
// records every broken promise in v; an error means it could not run.
type drill struct {
	name string
	run  func(ctx context.Context, e *env, v *verdict) (figures any, err error)
}

func allDrills() []drill {
	return []drill{
		{"pg-restart", pgRestartDrill},
		{"server-sigkill", sigkillDrill},
		{"replicas", replicasDrill},
		{"slow-clients", slowClientsDrill},
		{"memory", memoryDrill},
		{"burst", burstDrill},
		{"stalled-readers", stalledReadersDrill},
		{"failover", failoverDrill},
	}
}

// result is the line printed for a drill.
type result struct {
	Drill    string   `json:"drill"`
	Pass     bool     `json:"pass"`
	Seconds  float64  `json:"seconds"`
	Figures  any      `json:"figures,omitempty"`
	Failures []string `json:"failures,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ok, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "drill:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

type options struct {
	only      []string
	serverBin string
	keep      bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	only := fs.String("only", "", "comma-separated drills to run (default all): "+strings.Join(drillNames(), ","))
	bin := fs.String("server-bin", "", "server binary to drill (default: go build ./cmd/server)")
	keep := fs.Bool("keep", false, "keep the work directory with the PostgreSQL data (logs alone are kept when a drill fails)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{serverBin: *bin, keep: *keep}
	if *only != "" {
		o.only = strings.Split(*only, ",")
		for _, name := range o.only {
			if !slices.Contains(drillNames(), name) {
				return o, fmt.Errorf("unknown drill %q (have %s)", name, strings.Join(drillNames(), ", "))
			}
		}
	}
	return o, nil
}

func drillNames() []string {
	var names []string
	for _, d := range allDrills() {
		names = append(names, d.name)
	}
	return names
}

// run sets up the environment, runs the drills in order and reports
// whether every one kept its promises.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (ok bool, err error) {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return false, err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := newEnv(ctx, opts, log)
	if err != nil {
		return false, err
	}
	ok = true
	defer func() {
		// Logs are worth keeping when something failed.
		err = errors.Join(err, e.close(opts.keep, opts.keep || !ok))
	}()

	enc := json.NewEncoder(stdout)
	var results []result
	// The summary goes to stderr, beside the progress: stdout stays one JSON
	// line per drill.
	defer func() { writeSummary(stderr, results) }()
	for _, d := range allDrills() {
		if len(opts.only) > 0 && !slices.Contains(opts.only, d.name) {
			continue
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		log.Info("drill starting", "drill", d.name)
		r := runDrill(ctx, e, d)
		ok = ok && r.Pass
		results = append(results, r)
		if err := enc.Encode(r); err != nil {
			return false, err
		}
	}
	return ok, nil
}

// runDrill runs one drill and stops every server it started.
func runDrill(ctx context.Context, e *env, d drill) result {
	start := time.Now()
	v := &verdict{}
	figures, err := d.run(ctx, e, v)
	e.stopServers()
	r := result{Drill: d.name, Seconds: time.Since(start).Round(100 * time.Millisecond).Seconds(), Figures: figures, Failures: v.failures, Notes: v.notes}
	if err != nil {
		r.Error = err.Error()
	}
	r.Pass = err == nil && len(v.failures) == 0
	return r
}

// env is what every drill shares: a work directory, the private
// PostgreSQL, the server binary and its key pair, and the servers running.
type env struct {
	log          *slog.Logger
	workDir      string
	serverBin    string
	serverSecret string
	serverPublic string
	serverPub    *btcec.PublicKey
	pg           *cluster

	mu      sync.Mutex
	servers []*serverProcess
}

func newEnv(ctx context.Context, opts options, log *slog.Logger) (_ *env, err error) {
	e := &env{log: log}
	e.workDir, err = os.MkdirTemp("", "ldkbackup-drill-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = e.close(opts.keep, true)
		}
	}()
	// PostgreSQL runs as another user when we are root; it must reach its
	// directory inside this one.
	if err := os.Chmod(e.workDir, 0o755); err != nil {
		return nil, err
	}
	if e.serverBin = opts.serverBin; e.serverBin == "" {
		log.Info("building the server", "to", filepath.Join(e.workDir, "server"))
		if e.serverBin, err = serverproc.Build(ctx, e.workDir); err != nil {
			return nil, err
		}
	}
	if e.serverSecret, e.serverPublic, err = config.GenerateKeyPair(); err != nil {
		return nil, err
	}
	cfg := config.Config{SecretKey: e.serverSecret, PublicKey: e.serverPublic}
	key, err := cfg.ServerKey()
	if err != nil {
		return nil, err
	}
	e.serverPub = key.PubKey()
	log.Info("starting a private PostgreSQL", "dir", filepath.Join(e.workDir, "pg"))
	if e.pg, err = newCluster(ctx, e.workDir); err != nil {
		return nil, err
	}
	if err := e.pg.start(ctx); err != nil {
		return nil, err
	}
	log.Info("private PostgreSQL running", "port", e.pg.port)
	return e, nil
}

func (e *env) track(s *serverProcess) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Contains(e.servers, s) {
		e.servers = append(e.servers, s)
	}
}

// stopServers stops every server a drill started.
func (e *env) stopServers() {
	e.mu.Lock()
	servers := e.servers
	e.servers = nil
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { _ = s.Stop() })
	}
	wg.Wait()
}

// close stops the servers and PostgreSQL. It deletes the PostgreSQL data
// unless keepData, and the rest of the work directory (server and
// PostgreSQL logs) unless keepLogs.
func (e *env) close(keepData, keepLogs bool) error {
	e.stopServers()
	var err error
	if e.pg != nil {
		if keepData {
			err = e.pg.stop(context.Background(), "fast")
		} else {
			err = e.pg.destroy()
		}
	}
	if keepData || keepLogs {
		if !keepData && filepath.Dir(e.serverBin) == e.workDir {
			err = errors.Join(err, os.Remove(e.serverBin)) // rebuilt by every run
		}
		e.log.Info("kept the work directory (server and PostgreSQL logs)", "dir", e.workDir, "with_data", keepData)
		return err
	}
	return errors.Join(err, os.RemoveAll(e.workDir))
}

// database creates a fresh database for a drill.
func (e *env) database(ctx context.Context, name string) (string, error) {
	return e.pg.createDatabase(ctx, name)
}

// sleepCtx sleeps for d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
