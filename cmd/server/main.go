// Command server is the backup server. Subcommands:
//
//	serve    serve with settings from the environment (production)
//	dev      serve on 127.0.0.1:3003 with a local database and a dev key pair
//	migrate  apply pending database migrations and exit
//	keygen   print a new server key pair
//	db-stop  stop the project-local PostgreSQL that dev started
//	tenant   administer tenants (wallet apps served by this deployment)
//	object   an object's version history, and restoring an old version
//	node     a node's usage against its quotas; per-node quotas
//	report   print the reporting views
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
	"path/filepath"
	"strings"
	"syscall"

	"ldkbackup/internal/app"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/devdb"
	"ldkbackup/internal/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

const usage = `usage: server <command> [flags]

commands:
  serve    serve with settings from the environment (and ./.env)
  dev      serve on 127.0.0.1:3003 with a local PostgreSQL and a dev key pair under .data/
  migrate  apply pending database migrations to DATABASE_URL and exit
  keygen   print a new server key pair (SECRET_KEY, PUBLIC_KEY)
  db-stop  stop the project-local PostgreSQL that dev started under .data/
  tenant   add, list, show, disable, enable tenants and add labels (server tenant for help)
  object   history and restore of an object's versions (server object for help)
  node     a node's usage, quotas and refusals; set its own quotas (server node for help)
  report   nodes, daily, tenants, stale: the reporting views as a table, CSV or JSON
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stderr)
	case "dev":
		return dev(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stderr)
	case "keygen":
		return keygen(stdout)
	case "db-stop":
		return devdb.Stop(ctx, ".data")
	case "tenant":
		return tenantCmd(ctx, args, getenv, stdout)
	case "object":
		return objectCmd(ctx, args, getenv, stdout)
	case "node":
		return nodeCmd(ctx, args, getenv, stdout)
	case "report":
		return reportCmd(ctx, args, getenv, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// loadConfig reads defaults, then ./.env, then the environment.
func loadConfig(base config.Config, getenv func(string) string) (config.Config, error) {
	vars, err := config.LoadDotEnv(".env", getenv)
	if err != nil {
		return config.Config{}, err
	}
	return base.FromEnv(config.Overlay(getenv, vars))
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	noMigrate := fs.Bool("no-migrate", false, "do not apply pending migrations at start-up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(config.Default(), getenv)
	if err != nil {
		return err
	}
	if *noMigrate {
		cfg.MigrateOnStart = false
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	a, err := app.New(ctx, cfg, logger, backup.SystemClock{})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func dev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fs.String("data", ".data", "directory for the local database and the dev key pair")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base := config.Default()
	base.Host = "127.0.0.1"
	base.LogFormat = "text"
	// A free port, so a local Prometheus on 9090 does not stop `make run`.
	base.AdminAddr = "127.0.0.1:0"
	cfg, err := loadConfig(base, getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)

	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL, err = devdb.Resolve(ctx, devdb.Options{
			DataDir:      *dataDir,
			DBName:       "ldkbackup_dev",
			Logger:       logger,
			Stdout:       stdout,
			AllowInstall: true,
		})
		if err != nil {
			return err
		}
	}
	if cfg.SecretKey == "" && cfg.PublicKey == "" {
		if cfg.SecretKey, cfg.PublicKey, err = devKeyPair(filepath.Join(*dataDir, "dev-server-key.env")); err != nil {
			return err
		}
	}
	a, err := app.New(ctx, cfg, logger, backup.SystemClock{})
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "server public key (pin this in the app): %s\n", cfg.PublicKey)
	fmt.Fprintf(stdout, "serving on %s  (metrics: http://%s/metrics; database: %s)\n", a.URL(), a.AdminAddr(), redactURL(cfg.DatabaseURL))
	return a.Wait(ctx)
}

// devKeyPair reads the dev key pair from path, creating it on first use, so
// a developer's app keeps working across restarts. Never used by serve.
func devKeyPair(path string) (secret, public string, err error) {
	vars, err := config.LoadDotEnv(path, func(string) string { return "" })
	if err != nil {
		return "", "", err
	}
	if vars["SECRET_KEY"] != "" && vars["PUBLIC_KEY"] != "" {
		return vars["SECRET_KEY"], vars["PUBLIC_KEY"], nil
	}
	if secret, public, err = config.GenerateKeyPair(); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", "", err
	}
	content := fmt.Sprintf("# Development key pair of `server dev`. Never use it in production.\nSECRET_KEY=%s\nPUBLIC_KEY=%s\n", secret, public)
	return secret, public, os.WriteFile(path, []byte(content), 0o600)
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(config.Default(), getenv)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set")
	}
	return postgres.Migrate(ctx, cfg.DatabaseURL, newLogger(cfg, stderr))
}

func keygen(stdout io.Writer) error {
	secret, public, err := config.GenerateKeyPair()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "SECRET_KEY=%s\nPUBLIC_KEY=%s\n", secret, public)
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redactURL hides a password in a database URL before printing it.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	creds := u[scheme+3 : at]
	if user, _, ok := strings.Cut(creds, ":"); ok {
		return u[:scheme+3] + user + ":***" + u[at:]
	}
	return u
}
