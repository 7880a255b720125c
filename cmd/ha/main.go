// Command ha runs a local pg_auto_failover formation for development
// (make ha-up, make ha-down): a monitor, a primary and a synchronous
// secondary under .data/ha on free loopback ports. `ha up` prints, as its
// last line, DATABASE_URL=<the formation's multi-host URL>; the server runs
// on it unchanged. It is a development tool: the production binary
// (cmd/server) knows nothing of it. docs/deployment.md maps the same setup
// onto three machines.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"ldkbackup/internal/haformation"
)

// errUsage is returned for a command line ha does not understand; its text is
// the usage.
var errUsage = errors.New(strings.TrimSpace(usage))

const usage = `usage: ha up|down|status [-dir DIR]

  up      create (or start again) the formation, wait until it is synchronous,
          and print DATABASE_URL=... as the last line; installs pg_auto_failover
          with apt-get when it is missing and this is root on Debian
  down    stop the formation and remove its directory
  status  what the monitor says about each node, and the primary's replication

DIR defaults to .data/ha.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ha:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	dir := filepath.Join(".data", "ha")
	cmd, rest := args[0], args[1:]
	if len(rest) == 2 && rest[0] == "-dir" {
		dir, rest = rest[1], nil
	}
	if len(rest) > 0 {
		return errUsage
	}
	switch cmd {
	case "up":
		f, err := haformation.Up(ctx, haformation.Options{Dir: dir, AllowInstall: true, Stdout: stdout})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "monitor %s; stop with: make ha-down\n", f.MonitorURL())
		fmt.Fprintf(stdout, "DATABASE_URL=%s\n", f.URL())
		return nil
	case "down":
		f, err := haformation.Open(dir, stdout)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stdout, "no formation in %s\n", dir)
			return nil
		}
		if err != nil {
			return err
		}
		return f.Down(ctx)
	case "status":
		f, err := haformation.Open(dir, stdout)
		if err != nil {
			return err
		}
		states, err := f.States(ctx)
		if err != nil {
			return err
		}
		for _, s := range states {
			fmt.Fprintf(stdout, "%s 127.0.0.1:%d reported=%s assigned=%s healthy=%t\n", s.Name, s.Port, s.Reported, s.Goal, s.Healthy)
		}
		if p, err := f.Primary(ctx); err == nil {
			rep, err := haformation.ReplicationOf(ctx, f.NodeURL(p))
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "primary %s: %s synchronous=%t\n", p.Name, rep, rep.Synchronous())
		}
		fmt.Fprintf(stdout, "DATABASE_URL=%s\n", f.URL())
		return nil
	}
	return errUsage
}
