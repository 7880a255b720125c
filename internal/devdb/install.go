package devdb

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// canInstall reports whether step 4 applies: root on a Debian-like machine,
// where installing the postgresql package needs nobody's permission.
func canInstall() bool { return CanInstall() }

// CanInstall reports whether packages can be installed here without asking
// anyone: root on a Debian-like machine with apt-get.
func CanInstall() bool {
	if os.Geteuid() != 0 {
		return false
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		return false
	}
	_, err := exec.LookPath("apt-get")
	return err == nil
}

// installPostgres installs the distribution's PostgreSQL, saying so first:
// it is the one thing here that changes the machine outside the project.
func installPostgres(ctx context.Context, out io.Writer) error {
	fmt.Fprintln(out, "no PostgreSQL binaries found; installing the postgresql package with apt-get (running as root on a Debian-like machine)")
	if err := AptInstall(ctx, out, "postgresql"); err != nil {
		return fmt.Errorf("%w (install PostgreSQL yourself, or set DATABASE_URL)", err)
	}
	return nil
}

// AptInstall runs apt-get update and apt-get install -y pkgs, echoing each
// command and its output to out. The caller says why first.
func AptInstall(ctx context.Context, out io.Writer, pkgs ...string) error {
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y"}, pkgs...)} {
		fmt.Fprintf(out, "+ apt-get %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}
