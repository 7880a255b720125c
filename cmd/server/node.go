package main

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/table"
)

func nodeCmd(env *cliEnv) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "node",
		Short: "a node's usage against its quotas and its refusals; per-node quotas",
		Long: `A node is a wallet, named by PUBKEY, its node key (66 hex characters).
--tenant defaults to "default". Settings come from the environment and ./.env
(DATABASE_URL).`,
		Example: `  server node show 02ab...ef
  server node quota 02ab...ef --bytes 209715200
  server node check --repair`,
	})
	cmd.AddCommand(nodeShowCmd(env), nodeQuotaCmd(env), nodeCheckCmd(env))
	return cmd
}

// nodeFlags are the flags of node show and node quota; show has only
// --tenant.
type nodeFlags struct {
	tenant                  string
	bytes, objects, uploads int64
	clear                   bool
}

func nodeShowCmd(env *cliEnv) *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:     "show PUBKEY",
		Short:   "usage against quotas, objects per network, refusals of the last 7 days",
		Example: "  server node show 02ab...ef --tenant acme",
		Args:    args(1, 1, "PUBKEY"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return nodeRun(cmd, env, "show", a[0], f)
		},
	}
	cmd.Flags().StringVar(&f.tenant, "tenant", backup.DefaultTenantSlug, "the tenant (wallet app) the node uses")
	return cmd
}

func nodeQuotaCmd(env *cliEnv) *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "quota PUBKEY [--bytes N] [--objects N] [--uploads N] [--clear]",
		Short: "set the node's own quotas (over the tenant's and the server's), or clear them",
		Long: `Set the node's own quotas, which win over the tenant's and the server's
(QUOTA_BYTES, QUOTA_OBJECTS, QUOTA_UPLOADS), or clear them with --clear; then
show the node. --bytes counts the latest version of each object; --uploads the
uploads remembered for the replay rule.`,
		Example: `  server node quota 02ab...ef --bytes 209715200 --objects 10000
  server node quota 02ab...ef --clear`,
		Args: args(1, 1, "PUBKEY"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return nodeRun(cmd, env, "quota", a[0], f)
		},
	}
	cmd.Flags().StringVar(&f.tenant, "tenant", backup.DefaultTenantSlug, "the tenant (wallet app) the node uses")
	cmd.Flags().Int64Var(&f.bytes, "bytes", 0, "quota of bytes (sum of latest versions)")
	cmd.Flags().Int64Var(&f.objects, "objects", 0, "quota of objects")
	cmd.Flags().Int64Var(&f.uploads, "uploads", 0, "quota of uploads remembered for the replay rule")
	cmd.Flags().BoolVar(&f.clear, "clear", false, "remove the node's own quotas")
	return cmd
}

func nodeRun(c *cobra.Command, env *cliEnv, cmd, pubkey string, f nodeFlags) error {
	ctx, stdout := c.Context(), env.stdout
	slug, bytesQuota, objectsQuota, uploadsQuota, clear := &f.tenant, &f.bytes, &f.objects, &f.uploads, &f.clear
	node, err := parseNodeKey(c, pubkey)
	if err != nil {
		return err
	}
	a, err := openAdmin(ctx, env.getenv)
	if err != nil {
		return err
	}
	defer a.close()
	t, err := a.tenant(ctx, *slug)
	if err != nil {
		return err
	}

	if cmd == "quota" {
		var b, u *int64
		var o *int32
		switch {
		case *clear && (*bytesQuota != 0 || *objectsQuota != 0 || *uploadsQuota != 0):
			return errors.New("node quota: --clear goes alone")
		case *clear:
		case *bytesQuota < 0 || *objectsQuota < 0 || *uploadsQuota < 0 || *objectsQuota > 1<<31-1:
			return errors.New("node quota: quotas must be positive")
		case *bytesQuota == 0 && *objectsQuota == 0 && *uploadsQuota == 0:
			return errors.New("node quota: give --bytes N, --objects N, --uploads N, or --clear")
		}
		if *uploadsQuota > 0 {
			u = uploadsQuota
		}
		if *bytesQuota > 0 {
			b = bytesQuota
		}
		if *objectsQuota > 0 {
			v := int32(*objectsQuota)
			o = &v
		}
		if err := a.store.SetNodeQuota(ctx, t.ID, node, b, o, u, time.Now()); err != nil {
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
	quotaUploads, uploadsFrom := t.Limits.QuotaUploads, "server default"
	if r.Quota != nil && r.Quota.QuotaUploads != nil {
		quotaUploads, uploadsFrom = *r.Quota.QuotaUploads, "node's own"
	}
	var used, objects, uploads int64
	first := "never stored anything"
	if r.Usage != nil {
		used, objects, uploads = r.Usage.Bytes, int64(r.Usage.Objects), r.Usage.Uploads
		first = r.Usage.FirstSeen.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "node:        %s (tenant %s)\n", node, t.Slug)
	fmt.Fprintf(stdout, "first seen:  %s\n", first)
	fmt.Fprintf(stdout, "last write:  %s\n", timeText(r.LastWrite))
	fmt.Fprintf(stdout, "bytes:       %d of %d (%.1f%%; quota: %s)\n", used, quotaBytes, percent(used, quotaBytes), bytesFrom)
	fmt.Fprintf(stdout, "objects:     %d of %d (%.1f%%; quota: %s)\n", objects, quotaObjects, percent(objects, quotaObjects), objectsFrom)
	fmt.Fprintf(stdout, "uploads:     %d of %d (%.1f%%; quota: %s), remembered for the replay rule, about %d bytes\n",
		uploads, quotaUploads, percent(uploads, quotaUploads), uploadsFrom, uploads*uploadHistoryBytes)
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

// uploadHistoryBytes is what one remembered upload takes in tables and
// indexes (reporting.nodes.upload_history_bytes counts the same).
const uploadHistoryBytes = 88

func nodeCheckCmd(env *cliEnv) *cobra.Command {
	var tenantSlug string
	var repair bool
	format := table.Table
	cmd := &cobra.Command{
		Use:   "check [PUBKEY] [--tenant SLUG] [--repair]",
		Short: "compare nodes' recorded usage with what they store; repair differences",
		Long: `Compare each node's recorded usage (bytes, objects, uploads: what its quotas
are checked against) with what it stores, in one snapshot, and list the nodes
that differ. With PUBKEY, that node of --tenant (default "default"); without,
every node (of --tenant only when it is given). --repair adds each difference
to the recorded usage. Exits 1 when differences were found and not repaired.
Without PUBKEY it reads every stored object and upload: run it off-peak.`,
		Example: `  server node check
  server node check 02ab...ef --tenant acme --repair`,
		Args: args(0, 1, "[PUBKEY]"),
		RunE: func(c *cobra.Command, a []string) error {
			var node *backup.NodeKey
			if len(a) == 1 {
				k, err := parseNodeKey(c, a[0])
				if err != nil {
					return err
				}
				node = &k
			}
			ctx := c.Context()
			adm, err := openAdmin(ctx, env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			var tenantID backup.TenantID
			if node != nil || c.Flags().Changed("tenant") {
				t, err := adm.tenant(ctx, tenantSlug)
				if err != nil {
					return err
				}
				tenantID = t.ID
			}
			drift, err := adm.store.CheckUsage(ctx, tenantID, node, repair)
			if err != nil {
				return err
			}
			rows := make([][]any, 0, len(drift))
			for _, d := range drift {
				rows = append(rows, []any{int64(d.Tenant), d.Node.String(), d.RecordedBytes, d.StoredBytes, d.RecordedObjects, d.StoredObjects, d.RecordedUploads, d.StoredUploads, repair})
			}
			if len(drift) == 0 && format == table.Table {
				fmt.Fprintln(env.stdout, "usage matches what is stored")
				return nil
			}
			if err := table.Write(env.stdout, format, []string{"tenant_id", "node", "recorded_bytes", "stored_bytes", "recorded_objects", "stored_objects", "recorded_uploads", "stored_uploads", "repaired"}, rows); err != nil {
				return err
			}
			if len(drift) > 0 && !repair {
				return fmt.Errorf("%d node(s) differ from what they store (--repair repairs them)", len(drift))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tenantSlug, "tenant", backup.DefaultTenantSlug, "the tenant (wallet app) of the node(s)")
	cmd.Flags().BoolVar(&repair, "repair", false, "add each difference to the recorded usage")
	formatFlag(cmd, &format)
	return cmd
}

func percent(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
