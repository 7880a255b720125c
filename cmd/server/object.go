package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/table"
)

func objectCmd(env *cliEnv) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "object",
		Short: "an object's version history; make an old version the latest again",
		Long: `An object is one backup of a node: PUBKEY (the node key, 66 hex characters),
NETWORK (bitcoin, testnet, regtest or signet), LABEL, and for channel_monitor
its CHANNEL_ID (64 hex characters). --tenant defaults to "default".

Settings come from the environment and ./.env (DATABASE_URL).`,
		Example: `  server object history 02ab...ef bitcoin channel_manager
  server object restore 02ab...ef bitcoin channel_manager --version 3`,
	})
	cmd.AddCommand(objectHistoryCmd(env), objectRestoreCmd(env))
	return cmd
}

// objectArgs are an object command's positional arguments and --tenant.
type objectArgs struct {
	tenant                            string
	pubkey, network, label, channelID string
}

const objectArgNames = "PUBKEY NETWORK LABEL [CHANNEL_ID]"

func (o *objectArgs) read(a []string) {
	o.pubkey, o.network, o.label = a[0], a[1], a[2]
	if len(a) == 4 {
		o.channelID = a[3]
	}
}

// resolve checks the arguments in the CLI's words (the service's errors
// name HTTP parameters) and finds the tenant.
func (o *objectArgs) resolve(ctx context.Context, cmd *cobra.Command, adm *admin) (*backup.Tenant, error) {
	node, err := parseNodeKey(cmd, o.pubkey)
	if err != nil {
		return nil, err
	}
	if _, err := backup.ParseNetwork(o.network); err != nil {
		return nil, usageErrorf(cmd, "NETWORK %q: want one of bitcoin, testnet, regtest, signet", truncate(o.network))
	}
	t, err := adm.tenant(ctx, o.tenant)
	if err != nil {
		return nil, err
	}
	if _, ok := t.Labels.Group(o.label); !ok {
		return nil, fmt.Errorf("LABEL %q is not a label of tenant %s (server tenant show %s lists its extra labels)", truncate(o.label), t.Slug, t.Slug)
	}
	switch {
	case o.label == backup.LabelChannelMonitor && o.channelID == "":
		return nil, usageErrorf(cmd, "label %s needs its CHANNEL_ID (64 hex characters) as the fourth argument", backup.LabelChannelMonitor)
	case o.label == backup.LabelChannelMonitor:
		if _, err := backup.ParseChannelID(o.channelID); err != nil {
			return nil, usageErrorf(cmd, "CHANNEL_ID %q: want 64 hex characters", truncate(o.channelID))
		}
	case o.channelID != "":
		return nil, usageErrorf(cmd, "CHANNEL_ID is only for label %s", backup.LabelChannelMonitor)
	}
	o.pubkey = node.String()
	return t, nil
}

func objectHistoryCmd(env *cliEnv) *cobra.Command {
	var o objectArgs
	format := table.Table
	cmd := &cobra.Command{
		Use:   "history " + objectArgNames,
		Short: "list every version of an object, newest first",
		Long: `List every version of an object, newest first: its size, SHA-256, when it was
stored, and whether its bytes are still held (RETAIN_VERSIONS).`,
		Example: `  server object history 02ab...ef bitcoin channel_manager
  server object history 02ab...ef bitcoin channel_monitor 5f3c...9a --format json --tenant acme`,
		Args: args(3, 4, objectArgNames),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.read(a)
			ctx := cmd.Context()
			adm, err := openAdmin(ctx, env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			t, err := o.resolve(ctx, cmd, adm)
			if err != nil {
				return err
			}
			vs, err := adm.objects.History(ctx, t, o.pubkey, o.network, o.label, o.channelID)
			if backup.ErrorCode(err) == backup.ENOTFOUND {
				return fmt.Errorf("no such object: node %s has no %s on %s under tenant %s", o.pubkey, o.label, o.network, t.Slug)
			}
			if err != nil {
				return err
			}
			rows := make([][]any, 0, len(vs))
			for _, v := range vs {
				rows = append(rows, []any{v.Version, v.Size, v.SHA256, v.CreatedAt, v.Held})
			}
			return table.Write(env.stdout, format, []string{"version", "size", "sha256", "created", "held"}, rows)
		},
	}
	cmd.Flags().StringVar(&o.tenant, "tenant", backup.DefaultTenantSlug, "the tenant (wallet app) the node uses")
	formatFlag(cmd, &format)
	return cmd
}

func objectRestoreCmd(env *cliEnv) *cobra.Command {
	var o objectArgs
	var version int64
	cmd := &cobra.Command{
		Use:   "restore " + objectArgNames + " --version N",
		Short: "make a copy of version N the object's latest version (recorded in the audit log)",
		Long: `Make a copy of version N the object's latest version, for undoing a bad upload.
Its bytes must still be held (object history shows which are). The replay rule
does not block the operator; the restore is recorded in audit_log.`,
		Example: `  server object restore 02ab...ef bitcoin channel_manager --version 3`,
		Args:    args(3, 4, objectArgNames),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.read(a)
			if version < 1 {
				return usageErrorf(cmd, "--version N (a positive integer) is required")
			}
			ctx := cmd.Context()
			adm, err := openAdmin(ctx, env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			t, err := o.resolve(ctx, cmd, adm)
			if err != nil {
				return err
			}
			res, err := adm.objects.RestoreVersion(ctx, t, o.pubkey, o.network, o.label, o.channelID, version)
			if err != nil {
				return err
			}
			if res.Unchanged {
				fmt.Fprintf(env.stdout, "version %d is already the latest version (%d); nothing changed\n", version, res.Version)
				return nil
			}
			fmt.Fprintf(env.stdout, "restored version %d as version %d\n", version, res.Version)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.tenant, "tenant", backup.DefaultTenantSlug, "the tenant (wallet app) the node uses")
	cmd.Flags().Int64Var(&version, "version", 0, "the version to restore (required)")
	return cmd
}
