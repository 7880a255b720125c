package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/tenant"
)

// admin is what the operator commands work with: the database, the tenant
// directory and the object service, as the server builds them.
type admin struct {
	cfg     config.Config
	pool    *pgxpool.Pool
	store   *postgres.Store
	tenants *tenant.Directory
	objects *backup.Service
	close   func()
}

// openAdmin reads the settings as serve does and connects to DATABASE_URL.
func openAdmin(ctx context.Context, getenv func(string) string) (*admin, error) {
	cfg, err := config.Load(config.Default(), getenv)
	if err != nil {
		return nil, err
	}
	if cfg.DatabaseURL == "" {
		return nil, errNoDatabaseURL
	}
	kek, err := cfg.KEK()
	if err != nil {
		return nil, err
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	store := postgres.NewStore(pool)
	return &admin{
		cfg:     cfg,
		pool:    pool,
		store:   store,
		tenants: tenant.NewDirectory(store, tenant.Config{KEK: kek, Limits: cfg.Limits(), RateLimits: cfg.RateLimits}, time.Now),
		objects: backup.NewService(store, backup.SystemClock{}, int(cfg.RetainVersions)),
		close:   pool.Close,
	}, nil
}

// tenant finds the tenant an operator named with --tenant (disabled or
// not); one that does not exist is an error in every command.
func (a *admin) tenant(ctx context.Context, slug string) (*backup.Tenant, error) {
	t, err := a.tenants.Find(ctx, slug)
	if backup.ErrorCode(err) == backup.ENOTFOUND {
		return nil, fmt.Errorf("no tenant %q (server tenant list shows them)", slug)
	}
	return t, err
}
