// Package app assembles the server from its configuration: pool, migrations,
// services, router and HTTP server. cmd/server runs it; end-to-end tests
// start it on :0.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"ldkbackup/api"
	"ldkbackup/internal/auth"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/limits"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/tenant"
)

// Version is reported by /v1/status; set at build time with -ldflags.
var Version = "dev"

// App is a running server.
type App struct {
	cfg      config.Config
	logger   *slog.Logger
	now      func() time.Time
	store    *postgres.Store
	pool     *pgxpool.Pool
	server   *http.Server
	listener net.Listener
	served   chan error
}

// New connects to the database, migrates it when configured to, and builds
// the HTTP server. now is the clock every time rule uses.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, now func() time.Time) (*App, error) {
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
	if kek == nil {
		logger.Warn("KEY_ENCRYPTION_KEY is not set: only the default tenant (/v1) is served")
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
	if !cfg.RateLimits {
		logger.Warn("RATE_LIMITS=off: no rate limits are enforced (quotas and the body limit still are); never run a public deployment like this")
	}
	proxies, err := cfg.TrustedProxyList()
	if err != nil {
		pool.Close()
		return nil, err
	}
	store := postgres.NewStore(pool)
	router, err := api.NewRouter(api.Deps{
		Backup:         backup.NewService(store, now, int(cfg.RetainVersions)),
		Auth:           auth.NewService(store, now, cfg.TimestampWindow),
		Tenants:        tenant.NewDirectory(store, tenant.Config{DefaultKey: serverKey, KEK: kek, Limits: cfg.Limits(), RateLimits: cfg.RateLimits}, now),
		Limiter:        limits.NewLimiter(store, now),
		Logger:         logger,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Version:        Version,
		TrustedProxies: proxies,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &App{
		cfg:    cfg,
		logger: logger,
		now:    now,
		store:  store,
		pool:   pool,
		server: &http.Server{
			Handler:           router,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      cfg.WriteTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		served: make(chan error, 1),
	}, nil
}

// Start listens on the configured address (port 0 picks a free one) and
// serves in the background.
func (a *App) Start() error {
	ln, err := net.Listen("tcp", a.cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr(), err)
	}
	a.listener = ln
	go func() { a.served <- a.server.Serve(ln) }()
	a.logger.Info("serving", "addr", ln.Addr().String(), "server_public_key", a.cfg.PublicKey)
	return nil
}

// URL is the base URL clients use, e.g. http://127.0.0.1:3003.
func (a *App) URL() string { return "http://" + a.listener.Addr().String() }

// Run starts the server and housekeeping and serves until ctx is done, then
// shuts down.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(); err != nil {
		a.pool.Close()
		return err
	}
	hkCtx, stopHousekeeping := context.WithCancel(ctx)
	defer stopHousekeeping()
	go a.housekeep(hkCtx)
	select {
	case err := <-a.served:
		a.pool.Close()
		return err
	case <-ctx.Done():
	}
	return a.Close()
}

// housekeep sweeps expired login state and rate counters every
// HousekeepingInterval; replicas take turns through an advisory lock.
func (a *App) housekeep(ctx context.Context) {
	t := time.NewTicker(a.cfg.HousekeepingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sw, err := a.store.Housekeep(ctx, a.now())
		if err != nil {
			if ctx.Err() == nil {
				a.logger.Warn("housekeeping failed", "error", err)
			}
			continue
		}
		if sw.Ran {
			a.logger.Info("housekeeping", "challenges", sw.Challenges, "sessions", sw.Sessions, "rate_counters", sw.RateCounters)
		}
	}
}

// Close stops accepting requests, lets in-flight ones (a persist being
// committed) finish within the shutdown timeout, then closes the pool.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	err := a.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		a.logger.Warn("shutdown timeout reached; closing remaining connections")
		err = a.server.Close()
	}
	a.pool.Close()
	return err
}
