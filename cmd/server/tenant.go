package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/tenant"
)

const tenantUsage = `usage: server tenant <command>

  add SLUG --name NAME              add a tenant with a new server key pair; prints the public key its app must pin
  list                              list tenants
  show SLUG                         show one tenant, its labels and limits
  disable SLUG                      answer 404 to the tenant's apps (data is kept)
  enable SLUG                       serve a disabled tenant again
  labels add SLUG LABEL --group G   accept LABEL for the tenant, listed under G (ldk, bitkit or other)

Settings come from the environment and ./.env: DATABASE_URL, and KEY_ENCRYPTION_KEY for add.
There is deliberately no key rotation: installed apps pin the server public key.
`

func tenantCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, tenantUsage)
		return errors.New("tenant: no command given")
	}
	a, err := openAdmin(ctx, getenv)
	if err != nil {
		return err
	}
	defer a.close()
	dir := a.tenants

	cmd, args := args[0], args[1:]
	switch cmd {
	case "add":
		fs := flag.NewFlagSet("tenant add", flag.ContinueOnError)
		name := fs.String("name", "", "display name")
		slug, err := parseWithPositionals(fs, args, 1)
		if err != nil {
			return err
		}
		r, err := dir.Create(ctx, slug[0], *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s added\nserver public key (pin this in the app): %s\nbase URL for the app: https://<host>/t/%s\n",
			r.Slug, hex.EncodeToString(r.PublicKey), r.Slug)
		return nil
	case "list":
		ts, err := dir.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SLUG\tNAME\tSERVER PUBLIC KEY\tEXTRA LABELS\tCREATED\tDISABLED")
		for _, t := range ts {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", t.Slug, t.Name, publicKeyText(t.PublicKey), t.ExtraLabels,
				t.CreatedAt.UTC().Format(time.RFC3339), timeText(t.DisabledAt))
		}
		return w.Flush()
	case "show":
		if len(args) != 1 {
			return errors.New("usage: server tenant show SLUG")
		}
		r, err := dir.Show(ctx, args[0])
		if err != nil {
			return err
		}
		printTenant(stdout, r)
		return nil
	case "disable", "enable":
		if len(args) != 1 {
			return fmt.Errorf("usage: server tenant %s SLUG", cmd)
		}
		if err := dir.SetDisabled(ctx, args[0], cmd == "disable"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s %sd\n", args[0], cmd)
		return nil
	case "labels":
		if len(args) == 0 || args[0] != "add" {
			return errors.New("usage: server tenant labels add SLUG LABEL --group ldk|bitkit|other")
		}
		fs := flag.NewFlagSet("tenant labels add", flag.ContinueOnError)
		group := fs.String("group", "", "ldk, bitkit or other")
		pos, err := parseWithPositionals(fs, args[1:], 2)
		if err != nil {
			return err
		}
		if err := dir.AddLabel(ctx, pos[0], pos[1], *group); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s accepts label %s (group %s)\n", pos[0], pos[1], *group)
		return nil
	}
	fmt.Fprint(stdout, tenantUsage)
	return fmt.Errorf("tenant: unknown command %q", cmd)
}

// parseWithPositionals parses flags that may stand before or after the
// positional arguments ("add acme --name Acme" and "add --name Acme acme"),
// of which there must be min to max (max defaults to min).
func parseWithPositionals(fs *flag.FlagSet, args []string, min int, max ...int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	hi := min
	if len(max) > 0 {
		hi = max[0]
	}
	if len(pos) < min || len(pos) > hi {
		if hi == min {
			return nil, fmt.Errorf("%s: want %d argument(s), got %d", fs.Name(), min, len(pos))
		}
		return nil, fmt.Errorf("%s: want %d to %d arguments, got %d", fs.Name(), min, hi, len(pos))
	}
	return pos, nil
}

func printTenant(w io.Writer, r tenant.Record) {
	fmt.Fprintf(w, "slug:               %s\n", r.Slug)
	fmt.Fprintf(w, "name:               %s\n", r.Name)
	fmt.Fprintf(w, "server public key:  %s\n", publicKeyText(r.PublicKey))
	fmt.Fprintf(w, "base path:          %s\n", basePath(r.Slug))
	fmt.Fprintf(w, "created:            %s\n", r.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "disabled:           %s\n", timeText(r.DisabledAt))
	fmt.Fprintf(w, "quota bytes:        %s\n", limitText(r.Limits.QuotaBytes))
	fmt.Fprintf(w, "quota objects:      %s\n", limitText(r.Limits.QuotaObjects))
	fmt.Fprintf(w, "rate per address:   %s\n", limitText(r.Limits.RatePerAddressPerMinute))
	fmt.Fprintf(w, "rate per node:      %s\n", limitText(r.Limits.RatePerNodePerMinute))
	fmt.Fprintf(w, "new nodes/addr/h:   %s\n", limitText(r.Limits.NewNodesPerAddressPerHour))
	labels := make([]string, 0, len(r.Labels))
	for l := range r.Labels {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	fmt.Fprintf(w, "extra labels:       %d (plus the protocol's built-in labels)\n", len(labels))
	for _, l := range labels {
		fmt.Fprintf(w, "  %s (%s)\n", l, r.Labels[l])
	}
}

func basePath(slug string) string {
	if slug == backup.DefaultTenantSlug {
		return "/v1 (and /t/default/v1)"
	}
	return "/t/" + slug + "/v1"
}

func publicKeyText(k []byte) string {
	if k == nil {
		return "PUBLIC_KEY from the environment"
	}
	return hex.EncodeToString(k)
}

func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func limitText[T int32 | int64](v *T) string {
	if v == nil {
		return "server default"
	}
	return fmt.Sprint(*v)
}
