package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"ldkbackup/internal/backup"
)

// Exit codes: 2 when the command line itself is wrong (unknown command or
// flag, wrong number of arguments, a malformed value), so a script can tell
// a typo from a refusal; 1 for every other failure.
const (
	exitError = 1
	exitUsage = 2
)

// cliEnv is what every command reads and writes: the environment (tests
// pass their own) and the output streams.
type cliEnv struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// usageError is a wrong command line; main exits 2 and points at --help.
type usageError struct {
	command string // e.g. "server tenant add"
	err     error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{command: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
}

// exitCode is the process's exit status for what run returned.
func exitCode(err error) int {
	var u *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return exitUsage
	}
	return exitError
}

// describeError is what main prints for err: one line, and for a wrong
// command line where to read about the right one.
func describeError(err error) string {
	var u *usageError
	if errors.As(err, &u) {
		return fmt.Sprintf("error: %v\nrun '%s --help' for usage", err, u.command)
	}
	return fmt.Sprintf("error: %v", err)
}

// args checks the number of positional arguments, naming them as the
// usage line does (names like "SLUG LABEL").
func args(min, max int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) >= min && len(a) <= max {
			return nil
		}
		if min == max {
			return usageErrorf(cmd, "%s takes %s (%d argument%s), got %d", cmd.CommandPath(), names, min, plural(min), len(a))
		}
		return usageErrorf(cmd, "%s takes %s (%d to %d arguments), got %d", cmd.CommandPath(), names, min, max, len(a))
	}
}

func noArgs(cmd *cobra.Command, a []string) error {
	if len(a) == 0 {
		return nil
	}
	return usageErrorf(cmd, "%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(a, " "))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// group makes cmd a command that only holds subcommands: run alone, it
// prints its help and fails; with an unknown subcommand, it says so.
// (Cobra would otherwise print the help and exit 0 for both.)
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, a []string) error {
		if len(a) > 0 {
			return usageErrorf(c, "unknown command %q for %s (want one of %s)", a[0], c.CommandPath(), strings.Join(subcommands(c), ", "))
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		c.SetOut(c.ErrOrStderr())
		_ = c.Usage()
		return usageErrorf(c, "%s needs a command (one of %s)", c.CommandPath(), strings.Join(subcommands(c), ", "))
	}
	return cmd
}

func subcommands(cmd *cobra.Command) []string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return names
}

// parseNodeKey reads a PUBKEY argument, with the CLI's words for what is
// wrong (backup.ParseNodeKey speaks of the HTTP header).
func parseNodeKey(cmd *cobra.Command, s string) (backup.NodeKey, error) {
	k, err := backup.ParseNodeKey(s)
	if err != nil {
		return k, usageErrorf(cmd, "PUBKEY %q is not a node key: want 66 hex characters of a compressed public key (starting 02 or 03)", truncate(s))
	}
	return k, nil
}

// truncate keeps an error message short when an argument is long.
func truncate(s string) string {
	if len(s) <= 70 {
		return s
	}
	return s[:70] + "..."
}
