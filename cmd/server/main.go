// Command server is the production backup server and its operator CLI:
// serve, migrate, keygen, healthcheck, version, and the tenant, object, node
// and report commands. Development tooling (make run) is cmd/dev, so this
// binary never finds, starts or installs a PostgreSQL. `server --help` lists them; every command has
// --help, which never needs a database.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"ldkbackup/internal/app"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
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
		serveCmd(env), migrateCmd(env), keygenCmd(env),
		healthcheckCmd(env), versionCmd(env),
		tenantCmd(env), objectCmd(env), nodeCmd(env), vssCmd(env), reportCmd(env),
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

func serve(ctx context.Context, noMigrate bool, env *cliEnv) error {
	cfg, err := config.Load(config.Default(), env.getenv)
	if err != nil {
		return err
	}
	if noMigrate {
		cfg.MigrateOnStart = false
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := cfg.Logger(env.stderr)
	a, err := app.New(ctx, cfg, logger, backup.SystemClock{})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func migrate(ctx context.Context, env *cliEnv) error {
	cfg, err := config.Load(config.Default(), env.getenv)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errNoDatabaseURL
	}
	return postgres.Migrate(ctx, cfg.DatabaseURL, cfg.Logger(env.stderr))
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
