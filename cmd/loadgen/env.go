package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"ldkbackup/internal/postgres"
	"ldkbackup/internal/serverproc"
)

// benchEnv is everything the scenarios share: the server under test, its
// database, the raw baseline and the probes.
type benchEnv struct {
	opts options
	log  *slog.Logger

	baseURL      string
	serverPubHex string
	http         *http.Client
	sender       *persistSender

	dbURL  string
	ownDB  bool           // created by this run: dropped at the end unless -keep
	admin  *pgxpool.Pool  // probe queries, CHECKPOINT, the scale prefill
	raw    *rawDB         // the baseline's own pool
	server *serverProcess // nil for a server this run did not start
	tmpDir string
	probe  *probe

	// Persists/s seen so far by body size, to size the pools of bodies.
	serverRates, rawRates map[int]float64
	rssPerScenario        bool // peak RSS could be reset before the last scenario
	checkpointWarned      bool
}

// setUp creates the database, migrates it, starts the server and opens the
// pools. On error it undoes what it did.
func setUp(ctx context.Context, opts options, logger *slog.Logger, stderr io.Writer) (_ *benchEnv, err error) {
	e := &benchEnv{opts: opts, log: logger, serverRates: map[int]float64{}, rawRates: map[int]float64{}}
	defer func() {
		if err != nil {
			_ = e.close(context.WithoutCancel(ctx))
		}
	}()
	if e.tmpDir, err = os.MkdirTemp("", "ldkbackup-loadgen-"); err != nil {
		return nil, err
	}
	if opts.serverURL != "" {
		err = e.useServer()
	} else {
		err = e.startOwnServer(ctx, stderr)
	}
	if err != nil {
		return nil, err
	}
	if e.admin, err = pgxpool.New(ctx, e.dbURL); err != nil {
		return nil, err
	}
	if e.raw, err = openRaw(ctx, e.dbURL, opts.concurrency); err != nil {
		return nil, err
	}
	e.probe = &probe{db: e.admin}
	if e.server != nil {
		e.probe.serverPID = e.server.PID()
		e.probe.metricsURL = e.server.adminURL + "/metrics"
	} else {
		e.probe.serverPID = opts.serverPID
	}
	e.http = newHTTPClient(max(opts.concurrency, opts.memoryConcurrency))
	pub, err := parseServerKey(e.serverPubHex)
	if err != nil {
		return nil, err
	}
	e.sender = &persistSender{http: e.http, serverPub: pub}
	e.describe(ctx)
	return e, nil
}

// startOwnServer creates and migrates a fresh bench database and starts a
// server on it.
func (e *benchEnv) startOwnServer(ctx context.Context, stderr io.Writer) error {
	name := benchDatabaseName(time.Now())
	dbURL, err := createDatabase(ctx, e.opts.pgURL, name, e.log, stderr)
	if err != nil {
		return err
	}
	e.dbURL, e.ownDB = dbURL, true
	e.log.Info("bench database", "name", name, "url", redact(dbURL))
	if err := postgres.Migrate(ctx, dbURL, e.log); err != nil {
		return err
	}
	bin := e.opts.serverBin
	if bin == "" {
		if bin, err = serverproc.Build(ctx, e.tmpDir); err != nil {
			return err
		}
	}
	serverDB := dbURL
	if e.opts.serverPoolMaxConns > 0 {
		if serverDB, err = withQueryParam(dbURL, "pool_max_conns", strconv.Itoa(e.opts.serverPoolMaxConns)); err != nil {
			return err
		}
	}
	if e.server, err = startServer(ctx, bin, e.tmpDir, serverDB, e.opts.pprofDir != "", e.opts.serverEnv); err != nil {
		return err
	}
	e.baseURL, e.serverPubHex = e.server.BaseURL, e.server.publicKey
	e.log.Info("server started", "url", e.baseURL, "pid", e.server.PID(), "log", e.server.LogPath)
	return nil
}

func (e *benchEnv) useServer() error {
	e.baseURL = strings.TrimRight(e.opts.serverURL, "/")
	e.serverPubHex = e.opts.serverPublicKey
	e.dbURL = e.opts.serverDB
	if e.opts.serverPID == 0 {
		e.log.Warn("no -server-pid: the server's CPU and memory are not reported")
	}
	return nil
}

// close stops the server and drops what this run created, unless -keep.
func (e *benchEnv) close(ctx context.Context) error {
	var errs []error
	if e.server != nil {
		errs = append(errs, e.server.Stop())
	}
	if e.raw != nil {
		if !e.ownDB && !e.opts.keep {
			errs = append(errs, e.raw.dropTables(ctx))
		}
		e.raw.close()
	}
	if e.admin != nil {
		e.admin.Close()
	}
	if e.ownDB {
		if e.opts.keep {
			e.log.Info("kept the bench database", "url", redact(e.dbURL))
		} else {
			errs = append(errs, dropDatabase(ctx, e.dbURL))
		}
	}
	if e.tmpDir != "" {
		if e.opts.keep {
			e.log.Info("kept the server's directory", "dir", e.tmpDir)
		} else {
			errs = append(errs, os.RemoveAll(e.tmpDir))
		}
	}
	return errors.Join(errs...)
}

// newHTTPClient is shared by every simulated wallet: enough idle
// connections that no request waits for a new TCP connection, and no
// compression (bodies are ciphertext).
func newHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * conns
	t.MaxIdleConnsPerHost = 4 * conns
	t.DisableCompression = true
	return &http.Client{Transport: t, Timeout: 5 * time.Minute}
}

func parseServerKey(pubHex string) (*btcec.PublicKey, error) {
	raw, err := hex.DecodeString(pubHex)
	if err != nil {
		return nil, fmt.Errorf("server public key: %w", err)
	}
	return btcec.ParsePubKey(raw)
}

func sha256Of(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// describe logs what the figures depend on: the code, the machine and
// PostgreSQL's durability settings.
func (e *benchEnv) describe(ctx context.Context) {
	attrs := []any{
		"commit", gitDescribe(ctx),
		"cpus", runtime.NumCPU(),
		"cpu", cpuModel(),
		"memory", memTotal(),
		"concurrency", e.opts.concurrency,
		"duration", e.opts.duration,
		"warmup", e.opts.warmup,
	}
	var version string
	if err := e.admin.QueryRow(ctx, "SELECT version()").Scan(&version); err == nil {
		attrs = append(attrs, "postgres", version)
	}
	for _, name := range []string{"fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "shared_buffers", "max_wal_size", "commit_delay"} {
		var v string
		if err := e.admin.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err == nil {
			attrs = append(attrs, name, v)
		}
	}
	if e.probe.metricsURL != "" {
		if m, err := scrapeMetrics(ctx, e.probe.metricsURL, metricPoolMax); err == nil {
			attrs = append(attrs, "server_pool_max_conns", m[metricPoolMax])
		}
	}
	e.log.Info("environment", attrs...)
}

func gitDescribe(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// cpuModel and memTotal read /proc; "" when they cannot.
func cpuModel() string { return procField("/proc/cpuinfo", "model name") }
func memTotal() string { return procField("/proc/meminfo", "MemTotal") }

func procField(path, key string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(raw)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
