package main

import (
	"time"

	"github.com/spf13/cobra"

	"ldkbackup/internal/report"
	"ldkbackup/internal/table"
)

func reportCmd(env *cliEnv) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "report",
		Short: "nodes, daily, tenants, stale, vss-users, vss-daily: the reporting views as a table, CSV or JSON",
		Long: `Print one of the views of the reporting schema (docs/reporting.md has them with
example queries). --tenant narrows a report to one tenant, which must exist.
WHEN is a date (2026-11-01, UTC) or a span back from now (7d, 12h).
Settings come from the environment and ./.env (DATABASE_URL).`,
		Example: `  server report nodes --tenant acme
  server report daily --since 2026-11-01 --format csv
  server report stale --since 14d --format json`,
	})
	cmd.AddCommand(
		reportViewCmd(env, "nodes", "per node: networks, objects, live and history bytes, first seen, last persist and restore, quota use",
			"only nodes that persisted since WHEN (default: all)"),
		reportViewCmd(env, "daily", "per UTC day and tenant: persists, bytes in, restores, reads, bytes out, new nodes, refusals by kind",
			"from that day on (default: the last 30 days)"),
		reportViewCmd(env, "tenants", "totals per tenant", ""),
		reportViewCmd(env, "stale", "nodes with channel monitors that have not persisted since WHEN",
			"the cut-off (default: 7d)"),
		reportViewCmd(env, "vss-daily", "per UTC day and tenant: VSS puts, bytes in, gets, bytes out, deletes, lists, new users",
			"from that day on (default: the last 30 days)"),
		reportViewCmd(env, "vss-users", "per VSS user: stores, objects, bytes, first seen, last write, quota use",
			"only users that wrote since WHEN (default: all)"),
	)
	return cmd
}

// reportViewCmd is one report; sinceHelp is "" for a report that takes no
// --since.
func reportViewCmd(env *cliEnv, name, short, sinceHelp string) *cobra.Command {
	format := table.Table
	var tenant, since string
	cmd := &cobra.Command{
		Use:     name,
		Short:   short,
		Example: "  server report " + name + "\n  server report " + name + " --tenant acme --format csv",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			opts := report.Options{Format: format, Tenant: tenant}
			if since != "" {
				t, err := report.ParseSince(since, now)
				if err != nil {
					return usageErrorf(cmd, "%v", err)
				}
				opts.Since = t
			}
			ctx := cmd.Context()
			a, err := openAdmin(ctx, env.getenv)
			if err != nil {
				return err
			}
			defer a.close()
			if tenant != "" {
				if _, err := a.tenant(ctx, tenant); err != nil {
					return err
				}
			}
			return report.Run(ctx, a.pool, name, opts, now, env.stdout)
		},
	}
	formatFlag(cmd, &format)
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant (default: all)")
	if sinceHelp != "" {
		cmd.Flags().StringVar(&since, "since", "", "WHEN: "+sinceHelp)
	}
	return cmd
}
