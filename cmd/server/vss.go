package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/table"
	"ldkbackup/internal/vss"
)

func vssCmd(env *cliEnv) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "vss",
		Short: "a VSS user's usage, keys and versions; per-user quotas; delete a user's data",
		Long: `A VSS user is named by its user token: for signature authorization the public
key (66 hex characters) its app signs with, for JWT authorization the token's
subject. --tenant defaults to "default". Settings come from the environment
and ./.env (DATABASE_URL).`,
		Example: `  server vss show 02ab...ef
  server vss quota 02ab...ef --bytes 209715200
  server vss delete 02ab...ef --tenant acme`,
	})
	cmd.AddCommand(vssShowCmd(env), vssQuotaCmd(env), vssDeleteCmd(env), vssCheckCmd(env))
	return cmd
}

// vssUserArg opens the admin connection and names the user of --tenant.
func vssUserArg(c *cobra.Command, env *cliEnv, slug, token string) (*admin, vss.User, error) {
	ctx := c.Context()
	a, err := openAdmin(ctx, env.getenv)
	if err != nil {
		return nil, vss.User{}, err
	}
	t, err := a.tenant(ctx, slug)
	if err != nil {
		a.close()
		return nil, vss.User{}, err
	}
	u, err := vss.NewUser(t, token)
	if err != nil {
		a.close()
		return nil, vss.User{}, usageErrorf(c, "USER_TOKEN: %s", backup.ErrorMessage(err))
	}
	return a, u, nil
}

func vssShowCmd(env *cliEnv) *cobra.Command {
	var slug string
	var limit int
	format := table.Table
	var store func(*cobra.Command) *string // --store, set below
	cmd := &cobra.Command{
		Use:   "show USER_TOKEN [--store ID] [--limit N]",
		Short: "usage against quotas, stores, keys and versions, refusals of the last 7 days",
		Long: `Show a user's usage against its quotas, its stores, and its keys with their
versions and sizes (by store, newest created first; the first --limit, of
--store only when given), then its refusals of the last 7 days. --format
applies to the keys.`,
		Example: `  server vss show 02ab...ef
  server vss show 02ab...ef --store wallet --format csv`,
		Args: args(1, 1, "USER_TOKEN"),
		RunE: func(c *cobra.Command, a []string) error {
			if limit < 1 {
				return usageErrorf(c, "--limit must be positive")
			}
			adm, u, err := vssUserArg(c, env, slug, a[0])
			if err != nil {
				return err
			}
			defer adm.close()
			storeID := store(c)
			r, err := adm.store.VSSUserReport(c.Context(), u, storeID, limit, time.Now().UTC().AddDate(0, 0, -7))
			if err != nil {
				return err
			}
			printVSSUser(env, u, r)
			rows := make([][]any, len(r.Keys))
			for i, k := range r.Keys {
				rows[i] = []any{k.StoreID, k.Key, k.Version, k.Size, k.CreatedAt, k.UpdatedAt}
			}
			if err := table.Write(env.stdout, format, []string{"store_id", "key", "version", "size", "created_at", "updated_at"}, rows); err != nil {
				return err
			}
			if int64(len(r.Keys)) == int64(limit) && r.Objects > int64(limit) {
				fmt.Fprintf(env.stderr, "showing the first %d keys of %d (--limit)\n", limit, r.Objects)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", backup.DefaultTenantSlug, "the tenant (wallet app) of the user")
	store = storeFlag(cmd)
	cmd.Flags().IntVar(&limit, "limit", 1000, "the most keys to show")
	formatFlag(cmd, &format)
	return cmd
}

func printVSSUser(env *cliEnv, u vss.User, r vss.UserReport) {
	w := env.stdout
	limits := u.Tenant.Limits
	quotaBytes, bytesFrom := limits.QuotaBytes, "tenant or server default"
	if r.OwnQuotaBytes != nil {
		quotaBytes, bytesFrom = *r.OwnQuotaBytes, "user's own"
	}
	quotaObjects, objectsFrom := limits.QuotaObjects, "tenant or server default"
	if r.OwnQuotaObjects != nil {
		quotaObjects, objectsFrom = *r.OwnQuotaObjects, "user's own"
	}
	first := "never wrote"
	if r.Exists {
		first = r.FirstSeen.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "user:        %s (tenant %s)\n", u.Token, u.Tenant.Slug)
	fmt.Fprintf(w, "first seen:  %s\n", first)
	fmt.Fprintf(w, "last write:  %s\n", timeText(r.LastWrite))
	fmt.Fprintf(w, "bytes:       %d of %d (%.1f%%; quota: %s)\n", r.Bytes, quotaBytes, percent(r.Bytes, quotaBytes), bytesFrom)
	fmt.Fprintf(w, "objects:     %d of %d (%.1f%%; quota: %s)\n", r.Objects, quotaObjects, percent(r.Objects, quotaObjects), objectsFrom)
	for _, s := range r.Stores {
		fmt.Fprintf(w, "  store %q: %d keys, %d bytes, last write %s\n", s.StoreID, s.Keys, s.Bytes, s.LastWrite.UTC().Format(time.RFC3339))
	}
	if len(r.Refusals) == 0 {
		fmt.Fprintln(w, "refusals:    none in the last 7 days")
	}
	for _, rf := range r.Refusals {
		fmt.Fprintf(w, "refusals:    %s: %d in the last 7 days, last %s\n", rf.Kind, rf.Count, rf.LastAt.UTC().Format(time.RFC3339))
	}
}

func vssQuotaCmd(env *cliEnv) *cobra.Command {
	var slug string
	var bytesQuota, objectsQuota int64
	var clear bool
	cmd := &cobra.Command{
		Use:   "quota USER_TOKEN [--bytes N] [--objects N] [--clear]",
		Short: "set the user's own quotas (over the tenant's and the server's), or clear them",
		Long: `Set the user's own quotas, which win over the tenant's and the server's
(QUOTA_BYTES, QUOTA_OBJECTS), or clear them with --clear. --bytes counts the
sizes of the user's values, --objects its keys (a store's global version is
one).`,
		Example: `  server vss quota 02ab...ef --bytes 209715200 --objects 20000
  server vss quota 02ab...ef --clear`,
		Args: args(1, 1, "USER_TOKEN"),
		RunE: func(c *cobra.Command, a []string) error {
			var b *int64
			var o *int32
			switch {
			case clear && (bytesQuota != 0 || objectsQuota != 0):
				return usageErrorf(c, "--clear goes alone")
			case clear:
			case bytesQuota < 0 || objectsQuota < 0 || objectsQuota > 1<<31-1:
				return usageErrorf(c, "quotas must be positive")
			case bytesQuota == 0 && objectsQuota == 0:
				return usageErrorf(c, "give --bytes N, --objects N, or --clear")
			}
			if bytesQuota > 0 {
				b = &bytesQuota
			}
			if objectsQuota > 0 {
				v := int32(objectsQuota)
				o = &v
			}
			adm, u, err := vssUserArg(c, env, slug, a[0])
			if err != nil {
				return err
			}
			defer adm.close()
			ctx := c.Context()
			if clear {
				err = adm.store.ClearVSSQuota(ctx, u)
			} else {
				err = adm.store.SetVSSQuota(ctx, u, b, o, time.Now())
			}
			if err != nil {
				return err
			}
			r, err := adm.store.VSSUserReport(ctx, u, nil, 0, time.Now().UTC().AddDate(0, 0, -7))
			if err != nil {
				return err
			}
			printVSSUser(env, u, r)
			return nil
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", backup.DefaultTenantSlug, "the tenant (wallet app) of the user")
	cmd.Flags().Int64Var(&bytesQuota, "bytes", 0, "quota of bytes (sum of the user's value sizes)")
	cmd.Flags().Int64Var(&objectsQuota, "objects", 0, "quota of keys")
	cmd.Flags().BoolVar(&clear, "clear", false, "remove the user's own quotas")
	return cmd
}

func vssDeleteCmd(env *cliEnv) *cobra.Command {
	var slug string
	var store func(*cobra.Command) *string // --store, set below
	cmd := &cobra.Command{
		Use:   "delete USER_TOKEN [--store ID]",
		Short: "delete a user's keys (all its stores, or one), recorded in vss_audit_log",
		Long: `Delete every key of a user (of --store only, when given), lower its usage by
exactly what went, and record the deletion in vss_audit_log, in one
transaction. The user's app sees an empty store: its next write of a key
must use version 0 or -1. Its quotas of its own and its refusals are kept.`,
		Example: `  server vss delete 02ab...ef
  server vss delete 02ab...ef --tenant acme --store wallet`,
		Args: args(1, 1, "USER_TOKEN"),
		RunE: func(c *cobra.Command, a []string) error {
			adm, u, err := vssUserArg(c, env, slug, a[0])
			if err != nil {
				return err
			}
			defer adm.close()
			storeID := store(c)
			d, err := adm.store.DeleteVSSUser(c.Context(), u, storeID, time.Now())
			if err != nil {
				return err
			}
			if d.Objects == 0 {
				if storeID != nil {
					return errors.New("vss delete: the user has no keys in that store")
				}
				return errors.New("vss delete: the user has no keys")
			}
			fmt.Fprintf(env.stdout, "user %s (tenant %s): deleted %d keys, %d bytes\n", u.Token, u.Tenant.Slug, d.Objects, d.Bytes)
			return nil
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", backup.DefaultTenantSlug, "the tenant (wallet app) of the user")
	store = storeFlag(cmd)
	return cmd
}

func vssCheckCmd(env *cliEnv) *cobra.Command {
	var slug string
	var repair bool
	format := table.Table
	cmd := &cobra.Command{
		Use:   "check [USER_TOKEN] [--tenant SLUG] [--repair]",
		Short: "compare VSS users' recorded usage with what they store; repair differences",
		Long: `Compare each VSS user's recorded usage (bytes, objects: what its quotas are
checked against) with what it stores, in one snapshot, and list the users that
differ. With USER_TOKEN, that user of --tenant (default "default"); without,
every user (of --tenant only when it is given). --repair adds each difference
to the recorded usage. Exits 1 when differences were found and not repaired.
Housekeeping runs the same check every USAGE_CHECK_INTERVAL.`,
		Example: `  server vss check
  server vss check 02ab...ef --tenant acme --repair`,
		Args: args(0, 1, "[USER_TOKEN]"),
		RunE: func(c *cobra.Command, a []string) error {
			ctx := c.Context()
			adm, err := openAdmin(ctx, env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			var tenantID backup.TenantID
			if len(a) == 1 || c.Flags().Changed("tenant") {
				t, err := adm.tenant(ctx, slug)
				if err != nil {
					return err
				}
				tenantID = t.ID
			}
			token := ""
			if len(a) == 1 {
				token = a[0]
			}
			drift, err := adm.store.CheckVSSUsage(ctx, tenantID, token, repair)
			if err != nil {
				return err
			}
			if len(drift) == 0 && format == table.Table {
				fmt.Fprintln(env.stdout, "usage matches what is stored")
				return nil
			}
			rows := make([][]any, 0, len(drift))
			for _, d := range drift {
				rows = append(rows, []any{int64(d.Tenant), d.UserToken, d.RecordedBytes, d.StoredBytes, d.RecordedObjects, d.StoredObjects, repair})
			}
			if err := table.Write(env.stdout, format, []string{"tenant_id", "user_token", "recorded_bytes", "stored_bytes", "recorded_objects", "stored_objects", "repaired"}, rows); err != nil {
				return err
			}
			if len(drift) > 0 && !repair {
				return fmt.Errorf("%d user(s) differ from what they store (--repair repairs them)", len(drift))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", backup.DefaultTenantSlug, "the tenant (wallet app) of the user(s)")
	cmd.Flags().BoolVar(&repair, "repair", false, "add each difference to the recorded usage")
	formatFlag(cmd, &format)
	return cmd
}

// storeFlag adds --store to cmd; the function it returns gives the store id
// given, or nil when the flag was not (an empty id is a store of its own).
func storeFlag(cmd *cobra.Command) func(*cobra.Command) *string {
	var store string
	cmd.Flags().StringVar(&store, "store", "", "only this store id (may be empty: --store '')")
	return func(c *cobra.Command) *string {
		if !c.Flags().Changed("store") {
			return nil
		}
		return &store
	}
}
