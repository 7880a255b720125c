package app_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/app"
	"ldkbackup/internal/client"
	"ldkbackup/internal/lnsig"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/tenant"
)

// TestTenantsAreSeparateSpaces: the same node key under two tenants (and
// the default one) is three separate spaces, each answered with its own key.
func TestTenantsAreSeparateSpaces(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	acmePub, zetaPub := h.addTenant("acme"), h.addTenant("zeta")
	require.NotEqual(t, acmePub, zetaPub)
	n := newNode(t)
	acme := h.tenantClient(h.url+"/t/acme", acmePub, n.secret, client.AndroidTimestamps)
	zeta := h.tenantClient(h.url+"/t/zeta", zetaPub, n.secret, client.IOSTimestamps)
	def := h.clientFor(h.url, n.secret, client.AndroidTimestamps)

	_, err := acme.Persist(ctx, "channel_manager", "", []byte("acme state"))
	require.NoError(t, err, "acme's reply verifies against acme's pinned key")
	_, err = zeta.Persist(ctx, "channel_manager", "", []byte("zeta state"))
	require.NoError(t, err)

	got, err := acme.Retrieve(ctx, "channel_manager", "")
	require.NoError(t, err)
	require.Equal(t, "acme state", string(got))
	got, err = zeta.Retrieve(ctx, "channel_manager", "")
	require.NoError(t, err)
	require.Equal(t, "zeta state", string(got))
	_, err = def.Retrieve(ctx, "channel_manager", "")
	require.ErrorIs(t, err, client.ErrNotFound, "the default tenant sees neither")

	// An app pinned to another tenant's key rejects the reply.
	wrongPin := h.tenantClient(h.url+"/t/acme", zetaPub, n.secret, client.AndroidTimestamps)
	_, err = wrongPin.Persist(ctx, "ping", "", []byte("x"))
	require.ErrorIs(t, err, client.ErrServerSignature)

	// Raw: the reply's signature recovers acme's key, and only acme's.
	body := []byte("raw")
	hdr := n.persistHeaders(body)
	r := h.do(http.MethodPost, "/t/acme/v1/persist?network=regtest&label=peers", hdr, body).json(t)
	sig := r["signature"].(string)
	require.NoError(t, lnsig.VerifyBackupHex(acmePub, hdr["Challenge"], sig))
	require.Error(t, lnsig.VerifyBackupHex(zetaPub, hdr["Challenge"], sig))
	require.Error(t, lnsig.VerifyBackupHex(h.serverPub, hdr["Challenge"], sig))
}

// TestListAndDeletionStayInTheirTenant: the same node key holds objects
// in two tenants and the default one; a list in one tenant names only its
// own objects, and DELETE /account in one removes only its own objects and
// frees only its own usage.
func TestListAndDeletionStayInTheirTenant(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	acmePub, zetaPub := h.addTenant("acme"), h.addTenant("zeta")
	n := newNode(t)
	acme := h.tenantClient(h.url+"/t/acme", acmePub, n.secret, client.AndroidTimestamps)
	zeta := h.tenantClient(h.url+"/t/zeta", zetaPub, n.secret, client.AndroidTimestamps)
	def := h.clientFor(h.url, n.secret, client.AndroidTimestamps)
	acmeMon, zetaMon, defMon := channelID(t), channelID(t), channelID(t)
	for _, p := range []struct {
		c       *client.Client
		label   string
		channel string
	}{
		{acme, "channel_manager", ""}, {acme, "channel_monitor", acmeMon},
		{zeta, "peers", ""}, {zeta, "channel_monitor", zetaMon},
		{def, "bitkit_settings", ""}, {def, "channel_monitor", defMon},
	} {
		_, err := p.c.Persist(ctx, p.label, p.channel, []byte(p.label+p.channel))
		require.NoError(t, err)
	}
	list := func(c *client.Client) client.List {
		t.Helper()
		l, err := c.List(ctx, "all")
		require.NoError(t, err)
		return l
	}
	require.Equal(t, client.List{List: []string{"channel_manager.bin"}, ChannelMonitors: []string{acmeMon + ".bin"}}, list(acme))
	require.Equal(t, client.List{List: []string{"peers.bin"}, ChannelMonitors: []string{zetaMon + ".bin"}}, list(zeta))
	require.Equal(t, client.List{List: []string{"bitkit_settings.bin"}, ChannelMonitors: []string{defMon + ".bin"}}, list(def))

	usage := func() string {
		t.Helper()
		var s string
		require.NoError(t, h.pool.QueryRow(ctx, `SELECT string_agg(tenant_id || ':' || bytes || ':' || objects, ' ' ORDER BY tenant_id) FROM node_usage`).Scan(&s))
		return s
	}
	before := usage()
	c := h.challengeAt("/t/acme", n)
	tok := h.respondAt("/t/acme", n, c).json(t)["bearer"].(string)
	r := h.do(http.MethodDelete, "/t/acme/v1/account?network=regtest", map[string]string{"Authorization": tok}, nil).json(t)
	require.EqualValues(t, 2, r["deleted"].(map[string]any)["objects"], "acme's two objects, no more")

	require.Equal(t, client.List{List: []string{}, ChannelMonitors: []string{}}, list(acme))
	require.Equal(t, client.List{List: []string{"peers.bin"}, ChannelMonitors: []string{zetaMon + ".bin"}}, list(zeta))
	require.Equal(t, client.List{List: []string{"bitkit_settings.bin"}, ChannelMonitors: []string{defMon + ".bin"}}, list(def))
	got, err := zeta.Retrieve(ctx, "channel_monitor", zetaMon)
	require.NoError(t, err)
	require.Equal(t, "channel_monitor"+zetaMon, string(got))
	var acmeID int64
	require.NoError(t, h.pool.QueryRow(ctx, `SELECT id FROM tenants WHERE slug = 'acme'`).Scan(&acmeID))
	var want []string
	for _, u := range strings.Fields(before) {
		if strings.HasPrefix(u, fmt.Sprint(acmeID)+":") {
			u = fmt.Sprint(acmeID) + ":0:0"
		}
		want = append(want, u)
	}
	require.Equal(t, strings.Join(want, " "), usage(), "only acme's usage is freed")
}

func TestTokensDoNotCrossTenants(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addTenant("acme")
	h.addTenant("zeta")
	n := newNode(t)

	c := h.challengeAt("/t/acme", n)
	tok := h.respondAt("/t/acme", n, c).json(t)["bearer"].(string)
	auth := map[string]string{"Authorization": tok}
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/t/acme/v1/list?network=regtest", auth, nil).status)
	h.do(http.MethodGet, "/t/zeta/v1/list?network=regtest", auth, nil).requireError(t, http.StatusUnauthorized)
	h.do(http.MethodGet, "/v1/list?network=regtest", auth, nil).requireError(t, http.StatusUnauthorized)

	// A challenge issued under acme cannot be answered under zeta.
	c = h.challengeAt("/t/acme", n)
	before := h.snapshot()
	h.respondAt("/t/zeta", n, c).requireError(t, http.StatusBadRequest)
	require.Equal(t, before, h.snapshot())
}

func TestTenantLabels(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	acmePub, zetaPub := h.addTenant("acme"), h.addTenant("zeta")
	n := newNode(t)
	acme := h.tenantClient(h.url+"/t/acme", acmePub, n.secret, client.AndroidTimestamps)
	zeta := h.tenantClient(h.url+"/t/zeta", zetaPub, n.secret, client.AndroidTimestamps)

	before := h.snapshot()
	_, err := acme.Persist(ctx, "acme_wallet", "", []byte("x"))
	var se *client.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, http.StatusBadRequest, se.Status)
	require.Equal(t, before, h.snapshot())

	kek, err := h.cfg.KEK()
	require.NoError(t, err)
	dir := tenant.NewDirectory(postgres.NewStore(h.pool), tenant.Config{KEK: kek}, h.clock.Now)
	require.NoError(t, dir.AddLabel(ctx, "acme", "acme_wallet", "bitkit"))
	require.NoError(t, dir.AddLabel(ctx, "acme", "acme_extra", "other"))

	// Without a restart, once this replica's copy of the tenant is older
	// than CACHE_TTL.
	h.clock.Advance(h.cfg.CacheTTL)
	_, err = acme.Persist(ctx, "acme_wallet", "", []byte("wallet"))
	require.NoError(t, err)
	_, err = acme.Persist(ctx, "acme_extra", "", []byte("extra"))
	require.NoError(t, err)
	got, err := acme.Retrieve(ctx, "acme_wallet", "")
	require.NoError(t, err)
	require.Equal(t, "wallet", string(got))

	l, err := acme.List(ctx, "bitkit")
	require.NoError(t, err)
	require.Equal(t, []string{"acme_wallet.bin"}, l.List)
	l, err = acme.List(ctx, "ldk")
	require.NoError(t, err)
	require.Empty(t, l.List)
	l, err = acme.List(ctx, "all")
	require.NoError(t, err)
	require.Equal(t, []string{"acme_extra.bin", "acme_wallet.bin"}, l.List)

	// Only acme got the label.
	before = h.snapshot()
	_, err = zeta.Persist(ctx, "acme_wallet", "", []byte("x"))
	require.True(t, errors.As(err, &se))
	require.Equal(t, http.StatusBadRequest, se.Status)
	require.Equal(t, before, h.snapshot())
}

// TestTenantChangesReachTheServer: a tenant disabled or enabled by an
// operator's command (another process) is served or refused by a running
// replica once its copy is older than CACHE_TTL, and a new tenant from its
// first request.
func TestTenantChangesReachTheServer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	kek, err := h.cfg.KEK()
	require.NoError(t, err)
	dir := tenant.NewDirectory(postgres.NewStore(h.pool), tenant.Config{KEK: kek}, h.clock.Now)
	n := newNode(t)
	status := func() int { return h.do(http.MethodGet, "/t/acme/v1/status", nil, nil).status }

	require.Equal(t, http.StatusNotFound, status(), "unknown")
	pub := h.addTenant("acme")
	require.Equal(t, http.StatusOK, status(), "a new tenant is served from its first request")
	acme := h.tenantClient(h.url+"/t/acme", pub, n.secret, client.AndroidTimestamps)
	_, err = acme.Persist(ctx, "ping", "", []byte("before"))
	require.NoError(t, err)

	require.NoError(t, dir.SetDisabled(ctx, "acme", true))
	h.clock.Advance(h.cfg.CacheTTL)
	before := h.snapshot()
	body := []byte("while disabled")
	h.do(http.MethodPost, "/t/acme/v1/persist?network=regtest&label=ping", n.persistHeaders(body), body).requireError(t, http.StatusNotFound)
	require.Equal(t, before, h.snapshot())

	require.NoError(t, dir.SetDisabled(ctx, "acme", false))
	h.clock.Advance(h.cfg.CacheTTL)
	_, err = acme.Persist(ctx, "ping", "", []byte("after"))
	require.NoError(t, err)
}

// TestUnknownTenants: every way of naming a tenant that is not served is a
// 404 with an error body, and stores nothing.
func TestUnknownTenants(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addTenant("acme")
	h.addTenant("gone")
	kek, err := h.cfg.KEK()
	require.NoError(t, err)
	require.NoError(t, tenant.NewDirectory(postgres.NewStore(h.pool), tenant.Config{KEK: kek}, h.clock.Now).SetDisabled(context.Background(), "gone", true))
	n := newNode(t)
	body := []byte("bytes")

	for _, prefix := range []string{
		"/t/nope", "/t/gone", "/t/ACME", "/t/acme%20", "/t/ac%2Fme", "/t/..", "/t/%2e%2e", "/t/acme.", "/t/" + string(make([]byte, 0)) + "x_y",
		"/t/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", // 33 characters
	} {
		t.Run(prefix, func(t *testing.T) {
			before := h.snapshot()
			for _, p := range []string{"/v1/status", "/v1/persist?network=regtest&label=ping"} {
				method := http.MethodGet
				if p != "/v1/status" {
					method = http.MethodPost
				}
				h.do(method, prefix+p, n.persistHeaders(body), body).requireError(t, http.StatusNotFound)
			}
			h.do(http.MethodPost, prefix+"/v1/auth/challenge", map[string]string{"Public-Key": n.pub}, n.challengeBody(h.clock.Now())).requireError(t, http.StatusNotFound)
			require.Equal(t, before, h.snapshot())
		})
	}
	// Raw path tricks that an HTTP client would normalise.
	for _, raw := range []string{"/t/../v1/status", "/t/./v1/status", "/t//v1/status", "/t/acme/../gone/v1/status"} {
		resp := h.rawRequest("GET " + raw + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		require.Equal(t, http.StatusNotFound, resp, raw)
	}
	// The live tenant still answers, and disabling keeps its data.
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/t/acme/v1/status", nil, nil).status)
}

// TestTenantsNeedTheKeyEncryptionKey: without KEY_ENCRYPTION_KEY only the
// default tenant works, and the start-up log names the tenants left out;
// with a wrong one the server refuses to start, naming the tenant and the
// setting.
func TestTenantsNeedTheKeyEncryptionKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addTenant("acme")
	rightKEK := h.cfg.KeyEncryptionKey
	h.cfg.KeyEncryptionKey = ""
	bare := h.startReplica()
	require.Equal(t, http.StatusOK, h.doURL(bare, http.MethodGet, "/v1/status", nil, nil).status)
	n := newNode(t)
	body := []byte("x")
	before := h.snapshot()
	h.doURL(bare, http.MethodPost, "/t/acme/v1/persist?network=regtest&label=ping", n.persistHeaders(body), body).requireError(t, http.StatusServiceUnavailable)
	require.Equal(t, before, h.snapshot())
	warned := false
	for _, l := range h.logs.lines(t) {
		if l["level"] == "WARN" && strings.Contains(fmt.Sprint(l["msg"]), "not served") {
			warned = true
			require.Equal(t, []any{"acme"}, l["tenants"])
		}
	}
	require.True(t, warned, "the start-up log names the tenants that are not served")

	// A wrong key-encryption key does not open the tenant's key: the server
	// does not start.
	h.cfg.KeyEncryptionKey = hex.EncodeToString(randomBytes(t, 32))
	_, err := app.New(context.Background(), h.cfg, slog.New(slog.DiscardHandler), h.clock)
	require.ErrorContains(t, err, `tenant "acme"`)
	require.ErrorContains(t, err, "KEY_ENCRYPTION_KEY")

	// A disabled tenant is not served, so its key need not open.
	kek, err := hex.DecodeString(rightKEK)
	require.NoError(t, err)
	require.NoError(t, tenant.NewDirectory(postgres.NewStore(h.pool), tenant.Config{KEK: kek}, h.clock.Now).SetDisabled(context.Background(), "acme", true))
	h.startReplica()
}
