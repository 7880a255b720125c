package main

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"ldkbackup/internal/backup"
)

func nodeCmd(env *cliEnv) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "node",
		Short: "a node's usage against its quotas and its refusals; per-node quotas",
		Long: `A node is a wallet, named by PUBKEY, its node key (66 hex characters).
--tenant defaults to "default". Settings come from the environment and ./.env
(DATABASE_URL).`,
		Example: `  server node show 02ab...ef
  server node quota 02ab...ef --bytes 209715200`,
	})
	cmd.AddCommand(nodeShowCmd(env), nodeQuotaCmd(env))
	return cmd
}

// nodeFlags are the flags of node show and node quota; show has only
// --tenant.
type nodeFlags struct {
	tenant         string
	bytes, objects int64
	clear          bool
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
		Use:   "quota PUBKEY [--bytes N] [--objects N] [--clear]",
		Short: "set the node's own quotas (over the tenant's and the server's), or clear them",
		Long: `Set the node's own quotas, which win over the tenant's and the server's
(QUOTA_BYTES, QUOTA_OBJECTS), or clear them with --clear; then show the node.
--bytes counts the latest version of each object.`,
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
	cmd.Flags().BoolVar(&f.clear, "clear", false, "remove the node's own quotas")
	return cmd
}

func nodeRun(c *cobra.Command, env *cliEnv, cmd, pubkey string, f nodeFlags) error {
	ctx, stdout := c.Context(), env.stdout
	slug, bytesQuota, objectsQuota, clear := &f.tenant, &f.bytes, &f.objects, &f.clear
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
