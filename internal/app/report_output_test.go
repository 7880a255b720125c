package app_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/report"
	"ldkbackup/internal/table"
)

// legacyReports are the raw statements `server report` ran before its
// queries moved to db/queries/reporting.sql, kept here as the oracle that
// proves the move printed the same bytes: SELECT * read through
// rows.Values() is the output every script built on the reports has seen.
var legacyReports = map[string]string{
	"nodes": `SELECT * FROM reporting.nodes
		WHERE ($1 = '' OR tenant = $1) AND ($2::timestamptz IS NULL OR last_persist >= $2)
		ORDER BY tenant, live_bytes DESC, node_key`,
	"daily": `SELECT * FROM reporting.daily
		WHERE ($1 = '' OR tenant = $1) AND day >= ($2::timestamptz AT TIME ZONE 'UTC')::date
		ORDER BY day DESC, tenant`,
	"tenants": `SELECT * FROM reporting.tenants
		WHERE ($1 = '' OR tenant = $1)
		ORDER BY tenant`,
	"vss-users": `SELECT * FROM reporting.vss_users
		WHERE ($1 = '' OR tenant = $1) AND ($2::timestamptz IS NULL OR last_write >= $2)
		ORDER BY tenant, bytes DESC, user_token`,
	"vss-daily": `SELECT * FROM reporting.vss_daily
		WHERE ($1 = '' OR tenant = $1) AND day >= ($2::timestamptz AT TIME ZONE 'UTC')::date
		ORDER BY day DESC, tenant`,
	"stale": `SELECT * FROM reporting.stale_nodes
		WHERE ($1 = '' OR tenant = $1) AND (last_persist IS NULL OR last_persist < $2)
		ORDER BY last_persist NULLS FIRST, tenant, node_key`,
}

func legacyReport(t *testing.T, h *harness, name string, args []any, f table.Format) string {
	t.Helper()
	rows, err := h.pool.Query(context.Background(), legacyReports[name], args...)
	require.NoError(t, err)
	defer rows.Close()
	var cols []string
	for _, fd := range rows.FieldDescriptions() {
		cols = append(cols, fd.Name)
	}
	var data [][]any
	for rows.Next() {
		vals, err := rows.Values()
		require.NoError(t, err)
		data = append(data, vals)
	}
	require.NoError(t, rows.Err())
	var out bytes.Buffer
	require.NoError(t, table.Write(&out, f, cols, data))
	return out.String()
}

// requireReportsPrintAsBefore compares every report, in every format, with
// and without a tenant and --since, against the legacy statements on the
// same rows.
func requireReportsPrintAsBefore(t *testing.T, h *harness) {
	t.Helper()
	// A decimal percentage, a disabled tenant and a null quota column, so
	// every kind of value is printed.
	_, err := h.pool.Exec(context.Background(), `INSERT INTO node_quotas (tenant_id, node_key, quota_bytes, quota_objects, updated_at)
		SELECT tenant_id, node_key, 7, 3, now() FROM node_usage WHERE tenant_id = 1 ORDER BY bytes LIMIT 1`)
	require.NoError(t, err)
	_, err = h.pool.Exec(context.Background(), `UPDATE tenants SET disabled_at = now() WHERE slug = 'acme'`)
	require.NoError(t, err)
	_, err = h.pool.Exec(context.Background(), `DELETE FROM server_settings WHERE key = 'quota_uploads'`)
	require.NoError(t, err)
	now := time.Now()
	since := now.AddDate(0, 0, -3)
	defaults := map[string]any{"nodes": nil, "vss-users": nil, "vss-daily": now.Add(-30 * 24 * time.Hour), "daily": now.Add(-30 * 24 * time.Hour), "stale": now.Add(-7 * 24 * time.Hour)}
	for _, name := range report.Names() {
		for _, tenant := range []string{"", "default", "acme"} {
			for _, withSince := range []bool{false, true} {
				if withSince && name == "tenants" {
					continue
				}
				for _, f := range []table.Format{table.Table, table.CSV, table.JSON} {
					opts := report.Options{Format: f, Tenant: tenant}
					args := []any{tenant}
					switch {
					case name == "tenants":
					case withSince:
						opts.Since = since
						args = append(args, since)
					default:
						args = append(args, defaults[name])
					}
					want := legacyReport(t, h, name, args, f)
					var got bytes.Buffer
					require.NoError(t, report.Run(context.Background(), h.pool, name, opts, now, &got))
					require.Equal(t, want, got.String(), "%s tenant=%q since=%v format=%s", name, tenant, withSince, f)
				}
			}
		}
	}
}
