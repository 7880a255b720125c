package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

const objectUsage = `usage: server object <command>

  history PUBKEY NETWORK LABEL [CHANNEL_ID] [--tenant SLUG]
        list every version of an object, newest first
  restore PUBKEY NETWORK LABEL [CHANNEL_ID] --version N [--tenant SLUG]
        make a copy of version N the object's latest version (recorded in the audit log)

--tenant defaults to "default". Settings come from the environment and ./.env (DATABASE_URL).
`

func objectCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, objectUsage)
		return errors.New("object: no command given")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("object "+cmd, flag.ContinueOnError)
	slug := fs.String("tenant", "default", "tenant slug")
	version := fs.Int64("version", 0, "version to restore")
	switch cmd {
	case "history", "restore":
	default:
		fmt.Fprint(stdout, objectUsage)
		return fmt.Errorf("object: unknown command %q", cmd)
	}
	pos, err := parseWithPositionals(fs, args, 3, 4)
	if err != nil {
		return err
	}
	pubkey, network, label, channelID := pos[0], pos[1], pos[2], ""
	if len(pos) == 4 {
		channelID = pos[3]
	}

	a, err := openAdmin(ctx, getenv)
	if err != nil {
		return err
	}
	defer a.close()
	t, err := a.tenants.Find(ctx, *slug)
	if err != nil {
		return err
	}

	if cmd == "history" {
		vs, err := a.objects.History(ctx, t, pubkey, network, label, channelID)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "VERSION\tSIZE\tSHA256\tCREATED\tBYTES HELD")
		for _, v := range vs {
			fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%t\n", v.Version, v.Size, v.SHA256, v.CreatedAt.UTC().Format(time.RFC3339), v.Held)
		}
		return w.Flush()
	}

	if *version < 1 {
		return errors.New("object restore: --version N (a positive integer) is required")
	}
	res, err := a.objects.RestoreVersion(ctx, t, pubkey, network, label, channelID, *version)
	if err != nil {
		return err
	}
	if res.Unchanged {
		fmt.Fprintf(stdout, "version %d is already the latest version (%d); nothing changed\n", *version, res.Version)
		return nil
	}
	fmt.Fprintf(stdout, "restored version %d as version %d\n", *version, res.Version)
	return nil
}
