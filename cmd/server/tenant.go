package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/table"
)

func tenantCmd(env *cliEnv) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "tenant",
		Short: "add, list, show, disable and enable tenants (wallet apps); add labels",
		Long: `A tenant is one wallet app served by this deployment, with its own server key
pair (which its app pins) and its own space. The default tenant answers at /v1
with SECRET_KEY/PUBLIC_KEY; tenant SLUG answers at /t/SLUG/v1.

Settings come from the environment and ./.env: DATABASE_URL, and
KEY_ENCRYPTION_KEY for add. There is deliberately no key rotation: installed
apps pin the server public key.`,
		Example: `  server tenant add acme --name "Acme Wallet"
  server tenant list --format json
  server tenant labels add acme acme_wallet --group bitkit`,
	})
	labels := group(&cobra.Command{
		Use:     "labels",
		Short:   "labels a tenant accepts beyond the protocol's built-in ones",
		Example: "  server tenant labels add acme acme_wallet --group bitkit",
	})
	labels.AddCommand(tenantLabelsAddCmd(env))
	cmd.AddCommand(tenantAddCmd(env), tenantListCmd(env), tenantShowCmd(env),
		tenantSetDisabledCmd(env, true), tenantSetDisabledCmd(env, false), labels, tenantVSSAuthCmd(env))
	return cmd
}

func tenantAddCmd(env *cliEnv) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "add SLUG --name NAME",
		Short: "add a tenant with a new server key pair; prints the public key its app must pin",
		Long: `Add a tenant with a new server key pair, its secret key sealed under
KEY_ENCRYPTION_KEY, and print the public key its app must pin. SLUG is 1 to 32
of a-z, 0-9 and -; the app's base URL is https://<host>/t/SLUG.`,
		Example: `  server tenant add acme --name "Acme Wallet"`,
		Args:    args(1, 1, "SLUG"),
		RunE: func(cmd *cobra.Command, a []string) error {
			adm, err := openAdmin(cmd.Context(), env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			r, err := adm.tenants.Create(cmd.Context(), a[0], name)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "tenant %s added\nserver public key (pin this in the app): %s\nbase URL for the app: https://<host>/t/%s\n",
				r.Slug, hex.EncodeToString(r.PublicKey), r.Slug)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "display name (required)")
	return cmd
}

func tenantListCmd(env *cliEnv) *cobra.Command {
	format := table.Table
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "list tenants",
		Example: "  server tenant list\n  server tenant list --format csv",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := openAdmin(cmd.Context(), env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			ts, err := adm.tenants.List(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([][]any, 0, len(ts))
			for _, t := range ts {
				rows = append(rows, []any{t.Slug, t.Name, publicKeyText(t.PublicKey), t.ExtraLabels, t.CreatedAt, t.DisabledAt})
			}
			return table.Write(env.stdout, format, []string{"slug", "name", "server_public_key", "extra_labels", "created", "disabled"}, rows)
		},
	}
	formatFlag(cmd, &format)
	return cmd
}

func tenantShowCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "show SLUG",
		Short:   "show one tenant, its labels and limits",
		Example: "  server tenant show acme",
		Args:    args(1, 1, "SLUG"),
		RunE: func(cmd *cobra.Command, a []string) error {
			adm, err := openAdmin(cmd.Context(), env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			r, err := adm.tenants.Show(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			printTenant(env.stdout, r)
			return nil
		},
	}
}

func tenantSetDisabledCmd(env *cliEnv, disable bool) *cobra.Command {
	verb, short := "enable", "serve a disabled tenant again"
	if disable {
		verb, short = "disable", "answer 404 to the tenant's apps (its data is kept)"
	}
	return &cobra.Command{
		Use:     verb + " SLUG",
		Short:   short,
		Example: "  server tenant " + verb + " acme",
		Args:    args(1, 1, "SLUG"),
		RunE: func(cmd *cobra.Command, a []string) error {
			adm, err := openAdmin(cmd.Context(), env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			if err := adm.tenants.SetDisabled(cmd.Context(), a[0], disable); err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "tenant %s %sd\n", a[0], verb)
			return nil
		},
	}
}

func tenantLabelsAddCmd(env *cliEnv) *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "add SLUG LABEL [--group ldk|bitkit|other]",
		Short: "accept LABEL for the tenant's apps, listed under a group",
		Long: `Accept LABEL (1 to 64 of a-z, 0-9 and _) for the tenant's apps from their next
request on. --group is the fileGroup it lists under: ldk, bitkit, or other
(the default), which lists only under fileGroup=all.`,
		Example: `  server tenant labels add acme acme_wallet --group bitkit
  server tenant labels add acme acme_notes`,
		Args: args(2, 2, "SLUG LABEL"),
		RunE: func(cmd *cobra.Command, a []string) error {
			adm, err := openAdmin(cmd.Context(), env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			if err := adm.tenants.AddLabel(cmd.Context(), a[0], a[1], group); err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "tenant %s accepts label %s (group %s)\n", a[0], a[1], group)
			return nil
		},
	}
	cmd.Flags().StringVar(&group, "group", string(backup.GroupOther), "the group it lists under: ldk, bitkit or other")
	return cmd
}

// formatFlag adds --format to a listing command.
func formatFlag(cmd *cobra.Command, f *table.Format) {
	cmd.Flags().Var(f, "format", "output as "+table.Formats)
}

func printTenant(w io.Writer, r backup.TenantRecord) {
	fmt.Fprintf(w, "slug:               %s\n", r.Slug)
	fmt.Fprintf(w, "name:               %s\n", r.Name)
	fmt.Fprintf(w, "server public key:  %s\n", publicKeyText(r.PublicKey))
	fmt.Fprintf(w, "base path:          %s\n", basePath(r.Slug))
	fmt.Fprintf(w, "VSS base path:      %s\n", vssBasePath(r.Slug))
	fmt.Fprintf(w, "VSS authorization:  %s\n", vssAuthText(r.VSSAuth))
	fmt.Fprintf(w, "created:            %s\n", r.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "disabled:           %s\n", timeText(r.DisabledAt))
	fmt.Fprintf(w, "quota bytes:        %s\n", limitText(r.Limits.QuotaBytes))
	fmt.Fprintf(w, "quota objects:      %s\n", limitText(r.Limits.QuotaObjects))
	fmt.Fprintf(w, "rate per address:   %s\n", limitText(r.Limits.RatePerAddressPerMinute))
	fmt.Fprintf(w, "rate per node:      %s\n", limitText(r.Limits.RatePerNodePerMinute))
	fmt.Fprintf(w, "new nodes/addr/h:   %s\n", limitText(r.Limits.NewNodesPerAddressPerHour))
	labels := make([]string, 0, len(r.Labels))
	for l := range r.Labels {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	fmt.Fprintf(w, "extra labels:       %d (plus the protocol's built-in labels)\n", len(labels))
	for _, l := range labels {
		fmt.Fprintf(w, "  %s (%s)\n", l, r.Labels[l])
	}
}

func basePath(slug string) string {
	if slug == backup.DefaultTenantSlug {
		return "/v1 (and /t/default/v1)"
	}
	return "/t/" + slug + "/v1"
}

func vssBasePath(slug string) string {
	if slug == backup.DefaultTenantSlug {
		return "/vss (and /t/default/vss)"
	}
	return "/t/" + slug + "/vss"
}

func vssAuthText(a backup.VSSAuth) string {
	switch a.Scheme {
	case backup.VSSAuthJWT:
		sum := sha256.Sum256([]byte(a.JWTPublicKey))
		return "jwt (RS256 bearer tokens; issuer key sha256 " + hex.EncodeToString(sum[:8]) + "...)"
	case backup.VSSAuthNone:
		return "none (development only: served only with VSS_ALLOW_NO_AUTH=true)"
	}
	return string(a.Scheme) + " (the user's key signs each request, as ldk-node does by default)"
}

func publicKeyText(k []byte) string {
	if k == nil {
		return "PUBLIC_KEY from the environment"
	}
	return hex.EncodeToString(k)
}

func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func limitText[T int32 | int64](v *T) string {
	if v == nil {
		return "server default"
	}
	return fmt.Sprint(*v)
}

func tenantVSSAuthCmd(env *cliEnv) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "vss-auth SLUG signature|jwt|none [--jwt-key FILE]",
		Short: "choose how the tenant's VSS requests prove their user",
		Long: `Choose how the tenant's VSS requests (at its VSS base path) prove their user:
  signature  the user's key signs each request (ldk-node's default); the user
             token is the key. Every tenant starts with it.
  jwt        RS256 bearer tokens of the app's own login service; the user
             token is the token's subject. --jwt-key is the PEM public key
             (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE, at least 2048 bits)
             of that service.
  none       no proof: every client is one shared user. Development only:
             served only by a server started with VSS_ALLOW_NO_AUTH=true.
Every replica uses the new choice within CACHE_TTL. Data stays with its user
token, so switching schemes gives the app's users other user tokens (and
so empty stores) unless the new tokens equal the old.`,
		Example: `  server tenant vss-auth acme jwt --jwt-key issuer.pem
  server tenant vss-auth acme signature`,
		Args: args(2, 2, "SLUG SCHEME"),
		RunE: func(cmd *cobra.Command, a []string) error {
			scheme := backup.VSSAuthScheme(a[1])
			switch scheme {
			case backup.VSSAuthSignature, backup.VSSAuthJWT, backup.VSSAuthNone:
			default:
				return usageErrorf(cmd, "SCHEME %q: want signature, jwt or none", a[1])
			}
			if (scheme == backup.VSSAuthJWT) != (keyFile != "") {
				return usageErrorf(cmd, "--jwt-key FILE goes with the jwt scheme, and only with it")
			}
			var pem []byte
			if keyFile != "" {
				var err error
				if pem, err = os.ReadFile(keyFile); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			adm, err := openAdmin(ctx, env.getenv)
			if err != nil {
				return err
			}
			defer adm.close()
			if err := adm.tenants.SetVSSAuth(ctx, a[0], scheme, string(pem)); err != nil {
				return err
			}
			r, err := adm.tenants.Show(ctx, a[0])
			if err != nil {
				return err
			}
			printTenant(env.stdout, r)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "jwt-key", "", "PEM file of the token issuer's public key (jwt only)")
	return cmd
}
