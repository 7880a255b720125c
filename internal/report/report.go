// Package report prints the reporting views (db/migrations/00005_reporting.sql)
// as a table, CSV or JSON for `server report`. The figures are computed by
// the views; this package only selects and formats their rows.
package report

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ldkbackup/internal/table"
)

// Querier runs a query; a pool or a connection.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Options narrow a report.
type Options struct {
	Format table.Format // table (default), csv or json
	Tenant string       // "" for all tenants
	Since  time.Time    // meaning per report; zero for its default
}

// report is one view and how its --since applies.
type report struct {
	query        string // $1 tenant ("" for all), $2 since (when usesSince)
	usesSince    bool
	defaultSince time.Duration
}

var reports = map[string]report{
	// Nodes that persisted since --since (default: all).
	"nodes": {`SELECT * FROM reporting.nodes
		WHERE ($1 = '' OR tenant = $1) AND ($2::timestamptz IS NULL OR last_persist >= $2)
		ORDER BY tenant, live_bytes DESC, node_key`, true, 0},
	// Days since --since (default: the last 30).
	"daily": {`SELECT * FROM reporting.daily
		WHERE ($1 = '' OR tenant = $1) AND day >= ($2::timestamptz AT TIME ZONE 'UTC')::date
		ORDER BY day DESC, tenant`, true, 30 * 24 * time.Hour},
	// Totals per tenant (--since does not apply).
	"tenants": {`SELECT * FROM reporting.tenants
		WHERE ($1 = '' OR tenant = $1)
		ORDER BY tenant`, false, 0},
	// Nodes with channel monitors and no persist since --since (default: 7 days).
	"stale": {`SELECT * FROM reporting.stale_nodes
		WHERE ($1 = '' OR tenant = $1) AND (last_persist IS NULL OR last_persist < $2)
		ORDER BY last_persist NULLS FIRST, tenant, node_key`, true, 7 * 24 * time.Hour},
}

// Names lists the reports.
func Names() []string { return []string{"nodes", "daily", "tenants", "stale"} }

// Run prints report name to w.
func Run(ctx context.Context, db Querier, name string, opts Options, now time.Time, w io.Writer) error {
	r, ok := reports[name]
	if !ok {
		return fmt.Errorf("unknown report %q (want one of %s)", name, strings.Join(Names(), ", "))
	}
	args := []any{opts.Tenant}
	switch {
	case !r.usesSince && !opts.Since.IsZero():
		return fmt.Errorf("--since does not apply to the %s report", name)
	case !r.usesSince:
	case !opts.Since.IsZero():
		args = append(args, opts.Since)
	case r.defaultSince > 0:
		args = append(args, now.Add(-r.defaultSince))
	default:
		args = append(args, nil)
	}
	rows, err := db.Query(ctx, r.query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	var data [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		data = append(data, vals)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return table.Write(w, opts.Format, cols, data)
}

var relative = regexp.MustCompile(`^([0-9]+)([dh])$`)

// ParseSince reads --since: a date (2026-11-01, UTC) or a span back from now
// (7d, 12h).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if m := relative.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := 24 * time.Hour
		if m[2] == "h" {
			unit = time.Hour
		}
		return now.Add(-time.Duration(n) * unit), nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a date like 2026-11-01 or a span like 7d or 12h", s)
	}
	return t, nil
}
