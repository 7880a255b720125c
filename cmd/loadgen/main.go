// Command loadgen is the load benchmark (issue 7). It starts a server and a
// PostgreSQL database of its own (or uses a running server), runs each
// scenario as a closed loop of concurrent clients for a fixed time, and
// prints one JSON line per scenario on stdout: throughput, latency
// percentiles, the server's CPU per 1,000 requests and peak memory, and the
// same work done by plain pgx against PostgreSQL as the baseline.
//
//	go run ./cmd/loadgen                       # the default scenarios
//	go run ./cmd/loadgen -scenarios scale      # 2,000,000 stored objects
//	go run ./cmd/loadgen -duration 30s -keep   # longer runs; keep the database
//
// Progress and a Markdown table of the results go to stderr. See
// docs/performance.md for what the figures mean.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	duration, warmup time.Duration
	concurrency      int
	nodes            int
	objectsPerNode   int
	scenarios        []string

	pgURL string
	keep  bool

	serverBin          string
	serverPoolMaxConns int
	serverEnv          settingList
	serverURL          string
	serverPublicKey    string
	serverPID          int
	serverDB           string
	pprofDir           string

	presignBytes int64
	presignMax   int

	scaleNodes, scaleObjects int

	memoryConcurrency, memoryBodyBytes int
}

// defaultScenarios is what `make bench` runs: all of them, about 9 minutes
// on the 2-core machine (scale alone, with its pre-fill of 2,000,000
// objects, about 4).
const defaultScenarios = "persist-4KiB,persist-64KiB,persist-1MiB,retrieve-64KiB,retrieve-1MiB,restore," + vssScenarios + ",memory,scale"

// vssScenarios are the VSS protocol's (issue 15).
const vssScenarios = "vss-put-4KiB,vss-get-64KiB,vss-list-1000,vss-restore-200"

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	var scenarios string
	var memoryMiB int
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario and phase")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each measured window")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients (closed loop)")
	fs.IntVar(&o.nodes, "nodes", 64, "node keys per scenario (at least -concurrency, so clients rarely share a node)")
	fs.IntVar(&o.objectsPerNode, "objects-per-node", 4, "channel monitors each node persists to, in turn")
	fs.StringVar(&scenarios, "scenarios", defaultScenarios, "comma-separated: persist-4KiB, persist-64KiB, persist-1MiB, retrieve-64KiB, retrieve-1MiB, restore, vss-put-4KiB, vss-get-64KiB, vss-list-1000, vss-restore-200, memory, scale")

	fs.StringVar(&o.pgURL, "pg", "", "PostgreSQL server to create the bench database on (default: the one make run finds)")
	fs.BoolVar(&o.keep, "keep", false, "keep the bench database, its raw tables and the server's directory (binary, log) afterwards")

	fs.StringVar(&o.serverBin, "server-bin", "", "server binary to start (default: go build ./cmd/server)")
	fs.IntVar(&o.serverPoolMaxConns, "server-pool-max-conns", 0, "pool_max_conns for the started server's DATABASE_URL (0: the server's default)")
	fs.Var(&o.serverEnv, "server-env", "NAME=value: a setting for the started server, after loadgen's own (repeatable; for A/B runs such as CACHE_TTL=0)")
	fs.StringVar(&o.serverURL, "server-url", "", "use this running server instead of starting one (needs -server-public-key and -server-db)")
	fs.StringVar(&o.serverPublicKey, "server-public-key", "", "with -server-url: its PUBLIC_KEY")
	fs.IntVar(&o.serverPID, "server-pid", 0, "with -server-url: its process id, for its CPU and memory")
	fs.StringVar(&o.serverDB, "server-db", "", "with -server-url: its DATABASE_URL (the raw baseline runs there, in tables of its own)")

	fs.StringVar(&o.pprofDir, "pprof-dir", "", "start the server with ADMIN_PPROF=true and save a CPU profile of each measured window here")
	fs.Int64Var(&o.presignBytes, "presign-bytes", 4<<30, "most body bytes to hash and sign in advance per server run")
	fs.IntVar(&o.presignMax, "presign-max", 150_000, "most persists to sign in advance per server run")

	fs.IntVar(&o.scaleNodes, "scale-nodes", 100_000, "scale: nodes to pre-fill")
	fs.IntVar(&o.scaleObjects, "scale-objects", 20, "scale: objects per pre-filled node")

	fs.IntVar(&o.memoryConcurrency, "memory-concurrency", 64, "memory: concurrent persists")
	fs.IntVar(&memoryMiB, "memory-body-mib", 8, "memory: body size in MiB")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.memoryBodyBytes = memoryMiB * mib
	o.scenarios = strings.Split(scenarios, ",")
	return o, o.validate()
}

func (o options) validate() error {
	var known []string
	for _, sc := range allScenarios(o) {
		known = append(known, sc.key)
	}
	for _, s := range o.scenarios {
		if !slices.Contains(known, s) {
			return fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(known, ", "))
		}
	}
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return errors.New("-duration must be positive and -warmup not negative")
	case o.concurrency < 1 || o.nodes < 1 || o.objectsPerNode < 1:
		return errors.New("-concurrency, -nodes and -objects-per-node must be positive")
	case o.serverURL != "" && (o.serverPublicKey == "" || o.serverDB == ""):
		return errors.New("-server-url needs -server-public-key and -server-db")
	case o.serverURL != "" && o.pprofDir != "":
		return errors.New("-pprof-dir works only with a server this run starts")
	case o.serverURL != "" && slices.Contains(o.scenarios, "scale"):
		return errors.New("the scale scenario fills the database with 2,000,000 objects: run it on a database of its own, without -server-url")
	case o.memoryConcurrency < 1 || o.memoryBodyBytes < 1:
		return errors.New("-memory-concurrency and -memory-body-mib must be positive")
	case o.scaleNodes < 1 || o.scaleObjects < 1:
		return errors.New("-scale-nodes and -scale-objects must be positive")
	}
	return nil
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := setUp(ctx, opts, logger, stderr)
	if err != nil {
		return err
	}
	reports, runErr := runScenarios(ctx, e, stdout)
	if err := e.close(context.WithoutCancel(ctx)); err != nil {
		logger.Error("cleaning up", "error", err)
	}
	if len(reports) > 0 {
		fmt.Fprintln(stderr)
		writeTable(stderr, reports)
	}
	return runErr
}

// runScenarios runs the selected scenarios in their fixed order, printing
// each line as soon as it is known.
func runScenarios(ctx context.Context, e *benchEnv, stdout io.Writer) ([]report, error) {
	var out []report
	for _, sc := range allScenarios(e.opts) {
		if !slices.Contains(e.opts.scenarios, sc.key) {
			continue
		}
		start := time.Now()
		e.log.Info("scenario", "name", sc.name)
		reports, err := sc.run(ctx, e)
		if err != nil {
			return out, fmt.Errorf("%s: %w", sc.name, err)
		}
		for _, r := range reports {
			if r.Scenario == "" {
				r.Scenario = sc.name
			}
			if err := writeJSONLine(stdout, r); err != nil {
				return out, err
			}
			out = append(out, r)
		}
		e.log.Info("scenario done", "name", sc.name, "took", time.Since(start).Round(time.Second))
	}
	return out, nil
}

// settingList collects repeated NAME=value flags.
type settingList []string

func (l *settingList) String() string { return strings.Join(*l, " ") }

func (l *settingList) Set(v string) error {
	if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
		return fmt.Errorf("%q is not NAME=value", v)
	}
	*l = append(*l, v)
	return nil
}
