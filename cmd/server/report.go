package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"ldkbackup/internal/report"
)

const reportUsage = `usage: server report nodes|daily|tenants|stale [--format table|csv|json] [--tenant SLUG] [--since WHEN]

  nodes    per node: networks, objects, live and history bytes, first seen, last persist and restore, quota use
           (--since: only nodes that persisted since)
  daily    per UTC day and tenant: persists, bytes in, restores, reads, bytes out, new nodes, refusals by kind
           (--since: from that day; default the last 30 days)
  tenants  totals per tenant
  stale    nodes with channel monitors that have not persisted since --since (default 7d)

WHEN is a date (2026-11-01) or a span back from now (7d, 12h). The views are in the
reporting schema; docs/reporting.md has them with example queries.
`

func reportCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, reportUsage)
		return errors.New("report: which report? " + strings.Join(report.Names(), ", "))
	}
	name, args := args[0], args[1:]
	fs := flag.NewFlagSet("report "+name, flag.ContinueOnError)
	format := fs.String("format", "table", "table, csv or json")
	tenant := fs.String("tenant", "", "only this tenant")
	since := fs.String("since", "", "a date or a span like 7d")
	if _, err := parseWithPositionals(fs, args, 0); err != nil {
		return err
	}
	now := time.Now()
	opts := report.Options{Format: *format, Tenant: *tenant}
	if *since != "" {
		t, err := report.ParseSince(*since, now)
		if err != nil {
			return err
		}
		opts.Since = t
	}
	a, err := openAdmin(ctx, getenv)
	if err != nil {
		return err
	}
	defer a.close()
	return report.Run(ctx, a.pool, name, opts, now, stdout)
}
