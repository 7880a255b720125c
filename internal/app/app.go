// Package app assembles the server from its configuration: pool, migrations,
// services, router, HTTP servers and background loops. cmd/server runs it;
// end-to-end tests start it on :0.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"ldkbackup/api"
	"ldkbackup/internal/activity"
	"ldkbackup/internal/auth"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/limits"
	"ldkbackup/internal/metrics"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/tenant"
	"ldkbackup/internal/vss"
)

// Version is reported by /v1/status; set at build time with -ldflags.
var Version = "dev"

// activityFlushInterval is how often counted activity reaches the database;
// a crash loses at most this much of it.
const activityFlushInterval = 10 * time.Second

// metricsProbeTimeout bounds each database question a scrape of /metrics
// asks (readiness, database size), so a stuck database cannot stall it.
const metricsProbeTimeout = 2 * time.Second

// App is a running server.
type App struct {
	cfg      config.Config
	logger   *slog.Logger
	clock    backup.Clock
	metrics  *metrics.Metrics
	store    *postgres.Store
	pool     *pgxpool.Pool
	activity *activity.Recorder
	server   *http.Server
	admin    *http.Server
	listener net.Listener
	adminLn  net.Listener
	served   chan error

	stopLoops context.CancelFunc
	loops     sync.WaitGroup

	// inFlight counts requests being served, for the shutdown log.
	inFlight  atomic.Int64
	closeOnce sync.Once
	closeErr  error
}

// Option changes how New assembles the server.
type Option func(*options)

type options struct {
	vssAuth api.VSSAuthorizers
}

// WithVSSAuthorizers replaces how each tenant's VSS authorizer is found.
func WithVSSAuthorizers(f api.VSSAuthorizers) Option {
	return func(o *options) { o.vssAuth = f }
}

// New connects to the database, migrates it when configured to, and builds
// the HTTP servers. clock is the time every rule uses, and what a paced
// persist waits on.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, clock backup.Clock, opts ...Option) (*App, error) {
	now := clock.Now
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	serverKey, err := cfg.ServerKey()
	if err != nil {
		return nil, err
	}
	kek, err := cfg.KEK()
	if err != nil {
		return nil, err
	}
	proxies, err := cfg.TrustedProxyList()
	if err != nil {
		return nil, err
	}
	if kek == nil {
		logger.Warn("KEY_ENCRYPTION_KEY is not set: only the default tenant (/v1) is served")
	}
	if !cfg.RateLimits {
		logger.Warn("RATE_LIMITS=off: no rate limits are enforced (quotas and the body limit still are); never run a public deployment like this")
	}
	if cfg.MigrateOnStart {
		if err := postgres.Migrate(ctx, cfg.DatabaseURL, logger); err != nil {
			return nil, err
		}
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	store := postgres.NewStore(pool)
	if cfg.MigrateOnStart {
		// Reports fall back to these where a tenant has no quota of its own.
		settings := map[string]int64{"quota_bytes": cfg.QuotaBytes, "quota_objects": cfg.QuotaObjects, "quota_uploads": cfg.QuotaUploads}
		if err := store.PublishSettings(ctx, settings, now()); err != nil {
			pool.Close()
			return nil, err
		}
	}

	tenants := tenant.NewDirectory(store, tenant.Config{DefaultKey: serverKey, KEK: kek, Limits: cfg.Limits(), RateLimits: cfg.RateLimits, CacheTTL: cfg.CacheTTL}, now)
	unserved, err := tenants.CheckKeys(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if len(unserved) > 0 {
		logger.Warn("KEY_ENCRYPTION_KEY is not set: these enabled tenants are not served (their apps get 503)", "tenants", unserved)
	}

	if o.vssAuth == nil {
		o.vssAuth = newVSSAuthorizers(cfg, store, now).For
	}
	if cfg.VSSAllowNoAuth {
		logger.Warn("VSS_ALLOW_NO_AUTH=true: tenants whose VSS authorization is \"none\" are served, and anyone can read and write their one shared user; never run a public deployment like this")
	}
	m := metrics.New(pool, metrics.Probes{
		Ready:        store.Ready,
		DatabaseSize: store.DatabaseSize,
		EventKinds:   backup.EventKinds(),
		ProbeTimeout: metricsProbeTimeout,
	})
	rec := activity.NewRecorder(store, now, logger)
	// The router counts a paced persist or VSS write as an event of its
	// tenant when it ends; the wait itself is timed here, as it starts.
	paced := func(_ backup.TenantID, d time.Duration) { m.Paced(d) }
	router, err := api.NewRouter(api.Deps{
		Backup:         backup.NewService(store, clock, int(cfg.RetainVersions), backup.WithMaxStream(cfg.WriteTimeout), backup.WithPaced(paced)),
		VSS:            vss.NewService(store, clock, paced),
		VSSAuth:        o.vssAuth,
		Auth:           auth.NewService(store, now, cfg.TimestampWindow, cfg.CacheTTL),
		Tenants:        tenants,
		Limiter:        limits.NewLimiter(store, now, cfg.CacheTTL),
		Observer:       observer{m, rec},
		Ready:          store.Ready,
		Logger:         logger,
		Now:            now,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		InFlightBytes:  cfg.InFlightBytes,
		InFlightWait:   cfg.InFlightWait,
		Version:        Version,
		TrustedProxies: proxies,

		RetrieveChunkBytes: cfg.RetrieveChunk(),
		SendStallTimeout:   cfg.SendStallTimeout,
		WriteTimeout:       cfg.WriteTimeout,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	a := &App{
		cfg:      cfg,
		logger:   logger,
		clock:    clock,
		metrics:  m,
		store:    store,
		pool:     pool,
		activity: rec,
		server: &http.Server{
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      cfg.WriteTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		served: make(chan error, 2),
	}
	a.server.Handler = a.countInFlight(router)
	if cfg.AdminAddr != "" {
		a.admin = &http.Server{Handler: adminMux(m, cfg.AdminPprof), ReadHeaderTimeout: 10 * time.Second}
	}
	return a, nil
}

// countInFlight keeps InFlight up to date.
func (a *App) countInFlight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.inFlight.Add(1)
		defer a.inFlight.Add(-1)
		next.ServeHTTP(w, r)
	})
}

// InFlight is the number of requests being served.
func (a *App) InFlight() int64 { return a.inFlight.Load() }

// adminMux serves the admin listener: metrics, and profiles when enabled.
func adminMux(m *metrics.Metrics, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// observer feeds each request to the metrics, and each event to both the
// metrics and the daily activity counters.
type observer struct {
	m   *metrics.Metrics
	rec *activity.Recorder
}

func (o observer) Request(tenant, route string, status int, d time.Duration, in, out int64) {
	o.m.Request(tenant, route, status, d, in, out)
}

func (o observer) Event(tenant *backup.Tenant, route, kind string, bytes int64) {
	o.m.Event(tenant.Slug, route, kind)
	o.rec.Add(tenant.ID, kind, bytes)
}

// Start listens on the public address (port 0 picks a free one) and the
// admin address, serves in the background, and starts the background loops.
func (a *App) Start() error {
	ln, err := net.Listen("tcp", a.cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr(), err)
	}
	a.listener = ln
	if a.admin != nil {
		if a.adminLn, err = net.Listen("tcp", a.cfg.AdminAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on ADMIN_ADDR %s: %w", a.cfg.AdminAddr, err)
		}
		go func() {
			if err := a.admin.Serve(a.adminLn); !errors.Is(err, http.ErrServerClosed) {
				a.logger.Error("admin listener stopped", "error", err)
			}
		}()
	}
	go func() { a.served <- a.server.Serve(ln) }()

	ctx, cancel := context.WithCancel(context.Background())
	a.stopLoops = cancel
	a.loops.Add(3)
	go func() { defer a.loops.Done(); a.activity.Run(ctx, activityFlushInterval) }()
	go func() { defer a.loops.Done(); a.housekeep(ctx) }()
	go func() { defer a.loops.Done(); a.watchReplication(ctx) }()

	a.logger.Info("serving", "addr", ln.Addr().String(), "admin_addr", a.AdminAddr(), "server_public_key", a.cfg.PublicKey)
	return nil
}

// URL is the base URL clients use, e.g. http://127.0.0.1:3003.
func (a *App) URL() string { return "http://" + a.listener.Addr().String() }

// Handler is the public HTTP handler, for in-process fuzzing.
func (a *App) Handler() http.Handler { return a.server.Handler }

// AdminAddr is where /metrics answers; "" when the admin listener is off.
func (a *App) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// FlushActivity writes the activity counted so far, for tests and reports
// that must see it now.
func (a *App) FlushActivity(ctx context.Context) error { return a.activity.Flush(ctx) }

// Run starts the server and serves until ctx is done, then shuts down.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(); err != nil {
		a.pool.Close()
		return err
	}
	return a.Wait(ctx)
}

// Wait serves until ctx is done (SIGTERM), then shuts down.
func (a *App) Wait(ctx context.Context) error {
	select {
	case err := <-a.served:
		_ = a.Close()
		return err
	case <-ctx.Done():
	}
	return a.Close()
}

// housekeep sweeps expired login state and rested rate counters every
// HousekeepingInterval, retention and the upload history about hourly, and
// compares usage with what is stored every UsageCheckInterval; replicas take
// turns through advisory locks.
func (a *App) housekeep(ctx context.Context) {
	t := time.NewTicker(a.cfg.HousekeepingInterval)
	defer t.Stop()
	var lastHourly, lastUsageCheck time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var sweep postgres.Sweep
		if time.Since(lastHourly) >= time.Hour {
			sweep = postgres.Sweep{Retain: int(a.cfg.RetainVersions), UploadHistoryDays: int(a.cfg.UploadHistoryDays), VSSSignatureWindow: a.cfg.VSSSignatureWindow}
		}
		sw, err := a.store.Housekeep(ctx, a.clock.Now(), sweep)
		if err != nil {
			if ctx.Err() == nil {
				a.logger.Warn("housekeeping failed", "error", err)
			}
			continue
		}
		if sweep.Retain > 0 {
			lastHourly = time.Now()
		}
		if sw.Ran {
			a.logger.Info("housekeeping", "challenges", sw.Challenges, "sessions", sw.Sessions,
				"rate_counters", sw.RateCounters, "pruned_versions", sw.Pruned, "forgotten_uploads", sw.Forgotten, "vss_auth_marks", sw.VSSMarks)
		}
		if a.cfg.UsageCheckInterval > 0 && time.Since(lastUsageCheck) >= a.cfg.UsageCheckInterval {
			lastUsageCheck = time.Now()
			a.checkUsage(ctx)
		}
	}
}

// checkUsage compares every node's recorded usage with what it stores,
// logs each difference, and repairs them when USAGE_REPAIR is on.
func (a *App) checkUsage(ctx context.Context) {
	drift, err := a.store.CheckUsage(ctx, 0, nil, a.cfg.UsageRepair)
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("usage check failed", "error", err)
		}
		return
	}
	vssDrift, err := a.store.CheckVSSUsage(ctx, 0, "", a.cfg.UsageRepair)
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("VSS usage check failed", "error", err)
		}
		return
	}
	a.metrics.UsageDrift(len(drift) + len(vssDrift))
	for _, d := range drift {
		a.logger.Warn("usage differs from what is stored", "tenant", int64(d.Tenant), "node", d.Node.Short(),
			"recorded_bytes", d.RecordedBytes, "stored_bytes", d.StoredBytes,
			"recorded_objects", d.RecordedObjects, "stored_objects", d.StoredObjects,
			"recorded_uploads", d.RecordedUploads, "stored_uploads", d.StoredUploads, "repaired", a.cfg.UsageRepair)
	}
	for _, d := range vssDrift {
		a.logger.Warn("VSS usage differs from what is stored", "tenant", int64(d.Tenant), "user", vss.User{Token: d.UserToken}.Short(),
			"recorded_bytes", d.RecordedBytes, "stored_bytes", d.StoredBytes,
			"recorded_objects", d.RecordedObjects, "stored_objects", d.StoredObjects, "repaired", a.cfg.UsageRepair)
	}
}

// Close stops accepting requests, lets in-flight ones (a persist being
// committed) finish within the shutdown timeout, flushes the activity
// counts, then closes the pool. It logs each step, so an operator sees
// why a stop takes time and that it ended. Later calls return the first
// call's result.
func (a *App) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.close() })
	return a.closeErr
}

func (a *App) close() error {
	start := time.Now()
	a.logger.Info("shutting down: no new connections; draining requests in flight",
		"in_flight", a.inFlight.Load(), "timeout", a.cfg.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	err := a.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		a.logger.Warn("shutdown timeout reached; closing the connections of requests still in flight",
			"in_flight", a.inFlight.Load(), "timeout", a.cfg.ShutdownTimeout.String())
		err = a.server.Close()
	}
	if a.admin != nil {
		_ = a.admin.Close()
	}
	if a.stopLoops != nil {
		a.stopLoops()
		a.loops.Wait()
	}
	a.pool.Close()
	a.logger.Info("stopped", "took_ms", time.Since(start).Milliseconds())
	return err
}
