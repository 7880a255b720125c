// Package report prints the reporting views (db/migrations/00009_bounded_growth.sql,
// selected by db/queries/reporting.sql) as a table, CSV or JSON for `server
// report`. The figures are computed by the views; this package only selects
// and formats their rows.
package report

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"ldkbackup/internal/dbsqlc"
	"ldkbackup/internal/table"
)

// Options narrow a report.
type Options struct {
	Format table.Format // table (default), csv or json
	Tenant string       // "" for all tenants
	Since  time.Time    // meaning per report; zero for its default
}

// report is one view: its columns as printed, how its --since applies, and
// its rows. since is nil when --since does not apply or, for nodes, was not
// given.
type report struct {
	cols         []string
	usesSince    bool
	defaultSince time.Duration
	rows         func(ctx context.Context, q *dbsqlc.Queries, tenant string, since *time.Time) ([][]any, error)
}

var reports = map[string]report{
	// Nodes that persisted since --since (default: all).
	"nodes": {[]string{"tenant", "node_key", "networks", "objects", "channel_monitors", "live_bytes", "history_bytes",
		"uploads", "upload_history_bytes", "first_seen", "last_persist", "last_restore", "quota_bytes", "quota_objects",
		"quota_uploads", "quota_bytes_pct", "quota_objects_pct", "quota_uploads_pct"}, true, 0, nodeRows},
	// Days since --since (default: the last 30).
	"daily": {[]string{"day", "tenant", "persists", "bytes_in", "restores", "retrieves", "bytes_out", "new_nodes",
		"signature_failures", "refused_rate_address", "refused_rate_node", "refused_new_nodes", "refused_quota",
		"refused_body_size", "refused_replay", "paced"}, true, 30 * 24 * time.Hour, dailyRows},
	// Totals per tenant (--since does not apply).
	"tenants": {[]string{"tenant", "name", "created_at", "disabled_at", "nodes", "objects", "live_bytes", "history_bytes",
		"uploads", "upload_history_bytes", "nodes_persisted_7d"}, false, 0, tenantRows},
	// VSS days since --since (default: the last 30).
	"vss-daily": {[]string{"day", "tenant", "puts", "bytes_in", "gets", "bytes_out", "deletes", "lists", "new_users"},
		true, 30 * 24 * time.Hour, vssDailyRows},
	// VSS users that wrote since --since (default: all).
	"vss-users": {[]string{"tenant", "user_token", "stores", "objects", "bytes", "first_seen", "last_write",
		"quota_bytes", "quota_objects", "quota_bytes_pct", "quota_objects_pct"}, true, 0, vssUserRows},
	// Nodes with channel monitors and no persist since --since (default: 7 days).
	"stale": {[]string{"tenant", "node_key", "networks", "channel_monitors", "last_persist", "last_restore",
		"days_since_last_persist"}, true, 7 * 24 * time.Hour, staleRows},
}

// Names lists the reports.
func Names() []string {
	return []string{"nodes", "daily", "tenants", "stale", "vss-users", "vss-daily"}
}

// Run prints report name to w; db is a pool or a connection.
func Run(ctx context.Context, db dbsqlc.DBTX, name string, opts Options, now time.Time, w io.Writer) error {
	r, ok := reports[name]
	if !ok {
		return fmt.Errorf("unknown report %q (want one of %s)", name, strings.Join(Names(), ", "))
	}
	var since *time.Time
	switch {
	case !r.usesSince && !opts.Since.IsZero():
		return fmt.Errorf("--since does not apply to the %s report", name)
	case !r.usesSince:
	case !opts.Since.IsZero():
		since = &opts.Since
	case r.defaultSince > 0:
		t := now.Add(-r.defaultSince)
		since = &t
	}
	rows, err := r.rows(ctx, dbsqlc.New(db), opts.Tenant, since)
	if err != nil {
		return err
	}
	return table.Write(w, opts.Format, r.cols, rows)
}

func nodeRows(ctx context.Context, q *dbsqlc.Queries, tenant string, since *time.Time) ([][]any, error) {
	rs, err := q.ReportNodes(ctx, dbsqlc.ReportNodesParams{Tenant: tenant, Since: since})
	if err != nil {
		return nil, err
	}
	out := make([][]any, len(rs))
	for i, r := range rs {
		out[i] = []any{r.Tenant, r.NodeKey, list(r.Networks), r.Objects, r.ChannelMonitors, r.LiveBytes, numeric(r.HistoryBytes),
			r.Uploads, r.UploadHistoryBytes, r.FirstSeen, null(r.LastPersist), null(r.LastRestore), null(r.QuotaBytes), null(r.QuotaObjects),
			null(r.QuotaUploads), numeric(r.QuotaBytesPct), numeric(r.QuotaObjectsPct), numeric(r.QuotaUploadsPct)}
	}
	return out, nil
}

func dailyRows(ctx context.Context, q *dbsqlc.Queries, tenant string, since *time.Time) ([][]any, error) {
	rs, err := q.ReportDaily(ctx, dbsqlc.ReportDailyParams{Tenant: tenant, Since: *since})
	if err != nil {
		return nil, err
	}
	out := make([][]any, len(rs))
	for i, r := range rs {
		out[i] = []any{r.Day, r.Tenant, numeric(r.Persists), numeric(r.BytesIn), numeric(r.Restores), numeric(r.Retrieves),
			numeric(r.BytesOut), r.NewNodes, numeric(r.SignatureFailures), numeric(r.RefusedRateAddress), numeric(r.RefusedRateNode),
			numeric(r.RefusedNewNodes), numeric(r.RefusedQuota), numeric(r.RefusedBodySize), numeric(r.RefusedReplay), numeric(r.Paced)}
	}
	return out, nil
}

func tenantRows(ctx context.Context, q *dbsqlc.Queries, tenant string, _ *time.Time) ([][]any, error) {
	rs, err := q.ReportTenants(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([][]any, len(rs))
	for i, r := range rs {
		out[i] = []any{r.Tenant, r.Name, r.CreatedAt, null(r.DisabledAt), r.Nodes, numeric(r.Objects), numeric(r.LiveBytes),
			numeric(r.HistoryBytes), numeric(r.Uploads), numeric(r.UploadHistoryBytes), r.NodesPersisted7d}
	}
	return out, nil
}

func vssUserRows(ctx context.Context, q *dbsqlc.Queries, tenant string, since *time.Time) ([][]any, error) {
	rs, err := q.ReportVSSUsers(ctx, dbsqlc.ReportVSSUsersParams{Tenant: tenant, Since: since})
	if err != nil {
		return nil, err
	}
	out := make([][]any, len(rs))
	for i, r := range rs {
		out[i] = []any{r.Tenant, r.UserToken, r.Stores, r.Objects, r.Bytes, r.FirstSeen, null(r.LastWrite),
			null(r.QuotaBytes), null(r.QuotaObjects), numeric(r.QuotaBytesPct), numeric(r.QuotaObjectsPct)}
	}
	return out, nil
}

func vssDailyRows(ctx context.Context, q *dbsqlc.Queries, tenant string, since *time.Time) ([][]any, error) {
	rs, err := q.ReportVSSDaily(ctx, dbsqlc.ReportVSSDailyParams{Tenant: tenant, Since: *since})
	if err != nil {
		return nil, err
	}
	out := make([][]any, len(rs))
	for i, r := range rs {
		out[i] = []any{r.Day, r.Tenant, numeric(r.Puts), numeric(r.BytesIn), numeric(r.Gets), numeric(r.BytesOut),
			numeric(r.Deletes), numeric(r.Lists), r.NewUsers}
	}
	return out, nil
}

func staleRows(ctx context.Context, q *dbsqlc.Queries, tenant string, since *time.Time) ([][]any, error) {
	rs, err := q.ReportStaleNodes(ctx, dbsqlc.ReportStaleNodesParams{Tenant: tenant, Since: *since})
	if err != nil {
		return nil, err
	}
	out := make([][]any, len(rs))
	for i, r := range rs {
		out[i] = []any{r.Tenant, r.NodeKey, list(r.Networks), r.ChannelMonitors, null(r.LastPersist), null(r.LastRestore),
			null(r.DaysSinceLastPersist)}
	}
	return out, nil
}

// The cells hold what pgx's rows.Values() gave when the reports were
// SELECT * (nil for NULL, []any for an array), which is what table.Write
// prints and what scripts reading the reports have seen.

func null[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func numeric(n pgtype.Numeric) any {
	if !n.Valid {
		return nil
	}
	return n
}

func list(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
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
