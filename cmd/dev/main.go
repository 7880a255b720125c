// Command dev is the development server and its database, kept out of the
// production binary: it finds or starts a PostgreSQL (and, as root on a
// Debian-like machine without one, installs it), keeps a development key
// pair and serves on 127.0.0.1:3003. `make run` runs it, `make db-stop`
// stops the project-local PostgreSQL it started.
package main

import (
	"context"
	"fmt"
	"io"
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Getenv, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRoot(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var dataDir string
	root := &cobra.Command{
		Use:   "dev",
		Short: "serve on 127.0.0.1:3003 with a local PostgreSQL and a dev key pair (make run)",
		Long: `Serve for development on 127.0.0.1:3003: the database is DATABASE_URL, else a
PostgreSQL on 127.0.0.1:5432, else a project-local cluster under --data; the
key pair is SECRET_KEY/PUBLIC_KEY, else a development pair kept in
<data>/dev-server-key.env. README's "Quick start" has the details.`,
		Example: `  make run
  go run ./cmd/dev --data .data`,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dev(cmd.Context(), dataDir, getenv, stdout, stderr)
		},
	}
	root.Flags().StringVar(&dataDir, "data", ".data", "directory for the local database and the dev key pair")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(&cobra.Command{
		Use:     "db-stop",
		Short:   "stop the project-local PostgreSQL that dev started under .data/",
		Example: "  make db-stop",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return devdb.Stop(cmd.Context(), ".data")
		},
	})
	return root
}

func dev(ctx context.Context, dataDir string, getenv func(string) string, stdout, stderr io.Writer) error {
	base := config.Default()
	base.Host = "127.0.0.1"
	base.LogFormat = "text"
	// A free port, so a local Prometheus on 9090 does not stop `make run`.
	base.AdminAddr = "127.0.0.1:0"
	cfg, err := config.Load(base, getenv)
	if err != nil {
		return err
	}
	logger := cfg.Logger(stderr)

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
	fmt.Fprintf(stdout, "VSS (ldk-node): %s/vss, signature authorization (server tenant vss-auth changes it)\n", a.URL())
	return a.Wait(ctx)
}

// devKeyPair reads the dev key pair from path, creating it on first use
// (created is then true), so a developer's app keeps working across
// restarts. The production server never uses it.
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
	content := fmt.Sprintf("# Development key pair of `make run` (cmd/dev). Never use it in production.\nSECRET_KEY=%s\nPUBLIC_KEY=%s\n", secret, public)
	return secret, public, true, os.WriteFile(path, []byte(content), 0o600)
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
