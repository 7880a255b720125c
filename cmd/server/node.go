package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"time"

	"ldkbackup/internal/backup"
)

const nodeUsage = `usage: server node <command>

  show PUBKEY [--tenant SLUG]
        usage against quotas, objects per network, refusals of the last 7 days
  quota PUBKEY [--bytes N] [--objects N] [--clear] [--tenant SLUG]
        set the node's own quotas (over the tenant's and the server's), or clear them

--tenant defaults to "default". Settings come from the environment and ./.env (DATABASE_URL).
`

func nodeCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, nodeUsage)
		return errors.New("node: no command given")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("node "+cmd, flag.ContinueOnError)
	slug := fs.String("tenant", "default", "tenant slug")
	bytesQuota := fs.Int64("bytes", 0, "quota of bytes (sum of latest versions)")
	objectsQuota := fs.Int64("objects", 0, "quota of objects")
	clear := fs.Bool("clear", false, "remove the node's own quotas")
	switch cmd {
	case "show", "quota":
	default:
		fmt.Fprint(stdout, nodeUsage)
		return fmt.Errorf("node: unknown command %q", cmd)
	}
	pos, err := parseWithPositionals(fs, args, 1)
	if err != nil {
		return err
	}
	node, err := backup.ParseNodeKey(pos[0])
	if err != nil {
		return err
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

	if cmd == "quota" {
		var b *int64
		var o *int32
		switch {
		case *clear && (*bytesQuota != 0 || *objectsQuota != 0):
			return errors.New("node quota: --clear goes alone")
		case *clear:
		case *bytesQuota < 0 || *objectsQuota < 0 || *objectsQuota > 1<<31-1:
			return errors.New("node quota: quotas must be positive")
		case *bytesQuota == 0 && *objectsQuota == 0:
			return errors.New("node quota: give --bytes N, --objects N, or --clear")
		}
		if *bytesQuota > 0 {
			b = bytesQuota
		}
		if *objectsQuota > 0 {
			v := int32(*objectsQuota)
			o = &v
		}
		if err := a.store.SetNodeQuota(ctx, t.ID, node, b, o, nil, time.Now()); err != nil {
			return err
		}
		if *clear {
			fmt.Fprintf(stdout, "node %s: own quotas cleared\n", node)
		} else {
			fmt.Fprintf(stdout, "node %s: own quotas set\n", node)
		}
	}

	since := time.Now().UTC().AddDate(0, 0, -7)
	r, err := a.store.NodeReport(ctx, t.ID, node, since)
	if err != nil {
		return err
	}
	quotaBytes, quotaObjects := t.Limits.QuotaBytes, t.Limits.QuotaObjects
	bytesFrom, objectsFrom := "tenant or server default", "tenant or server default"
	if r.Quota != nil && r.Quota.QuotaBytes != nil {
		quotaBytes, bytesFrom = *r.Quota.QuotaBytes, "node's own"
	}
	if r.Quota != nil && r.Quota.QuotaObjects != nil {
		quotaObjects, objectsFrom = int64(*r.Quota.QuotaObjects), "node's own"
	}
	var used, objects int64
	first := "never stored anything"
	if r.Usage != nil {
		used, objects = r.Usage.Bytes, int64(r.Usage.Objects)
		first = r.Usage.FirstSeen.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "node:        %s (tenant %s)\n", node, t.Slug)
	fmt.Fprintf(stdout, "first seen:  %s\n", first)
	fmt.Fprintf(stdout, "last write:  %s\n", timeText(r.LastWrite))
	fmt.Fprintf(stdout, "bytes:       %d of %d (%.1f%%; quota: %s)\n", used, quotaBytes, percent(used, quotaBytes), bytesFrom)
	fmt.Fprintf(stdout, "objects:     %d of %d (%.1f%%; quota: %s)\n", objects, quotaObjects, percent(objects, quotaObjects), objectsFrom)
	nets := make([]string, 0, len(r.Networks))
	for n := range r.Networks {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	for _, n := range nets {
		fmt.Fprintf(stdout, "  %-8s   %d objects\n", n, r.Networks[n])
	}
	if len(r.Refusals) == 0 {
		fmt.Fprintln(stdout, "refusals:    none in the last 7 days")
	}
	for _, rf := range r.Refusals {
		fmt.Fprintf(stdout, "refusals:    %s: %d in the last 7 days, last %s\n", rf.Kind, rf.Count, rf.LastAt.UTC().Format(time.RFC3339))
	}
	return nil
}

func percent(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
