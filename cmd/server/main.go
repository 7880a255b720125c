// Command server is the backup server and its operator CLI: serve, dev,
// migrate, keygen, db-stop, healthcheck, version, and the tenant, object,
// node and report commands. `server --help` lists them; every command has
// --help, which never needs a database.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

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
		fmt.Fprintln(os.Stderr, describeError(err))
		os.Exit(exitCode(err))
	}
}

// run executes the command line args; tests call it with their own
// environment and buffers.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	root := newRoot(&cliEnv{getenv: getenv, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// newRoot builds the command tree.
func newRoot(env *cliEnv) *cobra.Command {
	root := group(&cobra.Command{
		Use:   "server",
		Short: "LDK backup server and its operator commands",
		Long: `The backup server for Lightning wallets, and the commands an operator runs
against its database.

Settings come from the environment, then from ./.env (the environment wins);
.env.example lists them. The operator commands need DATABASE_URL, and
KEY_ENCRYPTION_KEY where they touch a tenant's key.

Exit status: 0 done, 1 failed, 2 the command line is wrong.`,
		Example: `  server serve
  server tenant add acme --name "Acme Wallet"
  server report nodes --format csv`,
		Version:       app.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
	})
	root.SetOut(env.stdout)
	root.SetErr(env.stderr)
	root.SetVersionTemplate("ldk-backup-server {{.Version}}\n")
	// Every flag error (unknown flag, bad value, missing value) is a usage
	// error: exit 2 and a pointer to --help.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErrorf(cmd, "%v", err)
	})
	root.AddCommand(
		serveCmd(env), devCmd(env), migrateCmd(env), keygenCmd(env), dbStopCmd(),
		healthcheckCmd(env), versionCmd(env),
		tenantCmd(env), objectCmd(env), nodeCmd(env), reportCmd(env),
	)
	return root
}

func versionCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "print the server's version (also: server --version)",
		Example: "  server version",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(env.stdout, "ldk-backup-server %s\n", app.Version)
			return nil
		},
	}
}

func serveCmd(env *cliEnv) *cobra.Command {
	var noMigrate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "serve with settings from the environment and ./.env (production)",
		Long: `Serve the protocol on HOST:PORT and /metrics on ADMIN_ADDR, with settings from
the environment and ./.env. Refuses to start without SECRET_KEY/PUBLIC_KEY and
DATABASE_URL, or when an enabled tenant's server key does not open with
KEY_ENCRYPTION_KEY. Pending migrations are applied first unless --no-migrate
(or MIGRATE_ON_START=false).`,
		Example: `  DATABASE_URL=postgres://... server serve
  server serve --no-migrate`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), noMigrate, env)
		},
	}
	cmd.Flags().BoolVar(&noMigrate, "no-migrate", false, "do not apply pending migrations at start-up (run server migrate separately)")
	return cmd
}

func devCmd(env *cliEnv) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "serve on 127.0.0.1:3003 with a local PostgreSQL and a dev key pair (make run)",
		Long: `Serve for development on 127.0.0.1:3003: the database is DATABASE_URL, else a
PostgreSQL on 127.0.0.1:5432, else a project-local cluster under --data; the
key pair is SECRET_KEY/PUBLIC_KEY, else a development pair kept in
<data>/dev-server-key.env. README's "Quick start" has the details.`,
		Example: `  server dev
  make run`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dev(cmd.Context(), dataDir, env)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", ".data", "directory for the local database and the dev key pair")
	return cmd
}

func migrateCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "migrate",
		Short:   "apply pending database migrations to DATABASE_URL and exit",
		Example: "  DATABASE_URL=postgres://... server migrate",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return migrate(cmd.Context(), env)
		},
	}
}

func keygenCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "print a new server key pair (SECRET_KEY, PUBLIC_KEY)",
		Long: `Print a new server key pair in .env form. Wallet apps pin PUBLIC_KEY: generate
it once per deployment and back it up.`,
		Example: "  server keygen >> .env",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return keygen(env.stdout) },
	}
}

func dbStopCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "db-stop",
		Short:   "stop the project-local PostgreSQL that dev started under .data/",
		Example: "  server db-stop    # or: make db-stop",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return devdb.Stop(cmd.Context(), ".data")
		},
	}
}

// loadConfig reads defaults, then ./.env, then the environment.
func loadConfig(base config.Config, getenv func(string) string) (config.Config, error) {
	vars, err := config.LoadDotEnv(".env", getenv)
	if err != nil {
		return config.Config{}, err
	}
	return base.FromEnv(config.Overlay(getenv, vars))
}

func serve(ctx context.Context, noMigrate bool, env *cliEnv) error {
	cfg, err := loadConfig(config.Default(), env.getenv)
	if err != nil {
		return err
	}
	if noMigrate {
		cfg.MigrateOnStart = false
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := newLogger(cfg, env.stderr)
	a, err := app.New(ctx, cfg, logger, backup.SystemClock{})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func dev(ctx context.Context, dataDir string, env *cliEnv) error {
	stdout, stderr := env.stdout, env.stderr
	base := config.Default()
	base.Host = "127.0.0.1"
	base.LogFormat = "text"
	// A free port, so a local Prometheus on 9090 does not stop `make run`.
	base.AdminAddr = "127.0.0.1:0"
	cfg, err := loadConfig(base, env.getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)

	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL, err = devdb.Resolve(ctx, devdb.Options{
			DataDir:      dataDir,
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
		path := filepath.Join(dataDir, "dev-server-key.env")
		var created bool
		if cfg.SecretKey, cfg.PublicKey, created, err = devKeyPair(path); err != nil {
			return err
		}
		if created {
			fmt.Fprintf(stdout, "created a development key pair in %s (kept for the next runs, so an app pinned to it keeps working; never use it in production)\n", path)
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

// devKeyPair reads the dev key pair from path, creating it on first use
// (created is then true), so a developer's app keeps working across
// restarts. Never used by serve.
func devKeyPair(path string) (secret, public string, created bool, err error) {
	vars, err := config.LoadDotEnv(path, func(string) string { return "" })
	if err != nil {
		return "", "", false, err
	}
	if vars["SECRET_KEY"] != "" && vars["PUBLIC_KEY"] != "" {
		return vars["SECRET_KEY"], vars["PUBLIC_KEY"], false, nil
	}
	if secret, public, err = config.GenerateKeyPair(); err != nil {
		return "", "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", "", false, err
	}
	content := fmt.Sprintf("# Development key pair of `server dev`. Never use it in production.\nSECRET_KEY=%s\nPUBLIC_KEY=%s\n", secret, public)
	return secret, public, true, os.WriteFile(path, []byte(content), 0o600)
}

func migrate(ctx context.Context, env *cliEnv) error {
	cfg, err := loadConfig(config.Default(), env.getenv)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errNoDatabaseURL
	}
	return postgres.Migrate(ctx, cfg.DatabaseURL, newLogger(cfg, env.stderr))
}

// errNoDatabaseURL is what a command that needs the database says without
// one.
var errNoDatabaseURL = errors.New("DATABASE_URL is not set: export it or put it in ./.env")

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
