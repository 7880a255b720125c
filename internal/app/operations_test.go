package app_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/config"
	"ldkbackup/internal/report"
)

// reportRows runs a report as the CLI does and returns its rows as JSON
// objects.
func (h *harness) reportRows(name string, opts report.Options) []map[string]any {
	h.t.Helper()
	opts.Format = "json"
	var out bytes.Buffer
	require.NoError(h.t, report.Run(context.Background(), h.pool, name, opts, time.Now(), &out))
	var rows []map[string]any
	require.NoError(h.t, json.Unmarshal(out.Bytes(), &rows), out.String())
	return rows
}

func TestReportsAgainstSeededData(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.MaxBodyBytes = 10_000; c.QuotaBytes = 1_000_000 })
	acmePub := h.addTenant("acme")
	a, b, c := newNode(t), newNode(t), newNode(t)

	// Node a: three versions of its manager (100, 200, 300 bytes) and two
	// monitors (50 bytes each); node b one file; node c under acme.
	for _, size := range []int{100, 200, 300} {
		require.Equal(t, http.StatusOK, h.persistRaw(a, "network=bitcoin&label=channel_manager", randomBytes(t, size)).status)
	}
	for _, id := range []string{monitorID, otherMonitorID} {
		require.Equal(t, http.StatusOK, h.persistRaw(a, "network=bitcoin&label=channel_monitor&channelId="+id, randomBytes(t, 50)).status)
	}
	require.Equal(t, http.StatusOK, h.persistRaw(b, "network=testnet&label=ping", randomBytes(t, 10)).status)
	cBody := randomBytes(t, 70)
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/t/acme/v1/persist?network=regtest&label=ping", c.persistHeaders(cBody), cBody).status)
	_ = acmePub

	// a restores: one login, two reads (300 + 50 bytes).
	tok := map[string]string{"Authorization": h.login(a)}
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/v1/retrieve?network=bitcoin&label=channel_manager", tok, nil).status)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/v1/retrieve?network=bitcoin&label=channel_monitor&channelId="+monitorID, tok, nil).status)
	// Refusals: a bad signature, a replay, a body over the limit.
	bad := a.persistHeaders([]byte("x"))
	bad["Signed-Hash"] = b.persistHeaders([]byte("x"))["Signed-Hash"]
	require.Equal(t, http.StatusUnauthorized, h.do(http.MethodPost, "/v1/persist?network=bitcoin&label=peers", bad, []byte("x")).status)
	old := randomBytes(t, 40)
	oldHdr := b.persistHeaders(old)
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=testnet&label=peers", oldHdr, old).status)
	require.Equal(t, http.StatusOK, h.persistRaw(b, "network=testnet&label=peers", randomBytes(t, 40)).status)
	require.Equal(t, http.StatusConflict, h.do(http.MethodPost, "/v1/persist?network=testnet&label=peers", oldHdr, old).status)
	big := randomBytes(t, 10_001)
	require.Equal(t, http.StatusRequestEntityTooLarge, h.persistRaw(b, "network=testnet&label=peers", big).status)
	require.NoError(t, h.app.FlushActivity(context.Background()))

	nodes := h.reportRows("nodes", report.Options{Tenant: "default"})
	require.Len(t, nodes, 2)
	na := nodes[0] // ordered by live bytes
	require.Equal(t, a.pub, na["node_key"])
	require.Equal(t, []any{"bitcoin"}, na["networks"])
	require.EqualValues(t, 3, na["objects"])
	require.EqualValues(t, 2, na["channel_monitors"])
	require.EqualValues(t, 400, na["live_bytes"])
	require.EqualValues(t, 300, na["history_bytes"], "versions 1 and 2 of the manager")
	require.EqualValues(t, 1_000_000, na["quota_bytes"], "the server's default, published at start-up")
	require.EqualValues(t, 0.0, na["quota_bytes_pct"])
	require.NotEmpty(t, na["last_restore"])
	require.NotEmpty(t, na["last_persist"])
	require.Nil(t, nodes[1]["last_restore"])

	daily := h.reportRows("daily", report.Options{})
	byTenant := map[string]map[string]any{}
	for _, d := range daily {
		byTenant[d["tenant"].(string)] = d
	}
	def := byTenant["default"]
	require.NotNil(t, def)
	require.EqualValues(t, 8, def["persists"], "5 by a, 3 by b")
	require.EqualValues(t, 100+200+300+50+50+10+40+40, def["bytes_in"])
	require.EqualValues(t, 1, def["restores"])
	require.EqualValues(t, 2, def["retrieves"])
	require.EqualValues(t, 350, def["bytes_out"])
	require.EqualValues(t, 2, def["new_nodes"])
	require.EqualValues(t, 1, def["signature_failures"])
	require.EqualValues(t, 1, def["refused_replay"])
	require.EqualValues(t, 1, def["refused_body_size"])
	require.EqualValues(t, 1, byTenant["acme"]["persists"])
	require.EqualValues(t, 1, byTenant["acme"]["new_nodes"])

	tenants := h.reportRows("tenants", report.Options{})
	require.Len(t, tenants, 2)
	require.Equal(t, "acme", tenants[0]["tenant"])
	require.EqualValues(t, 1, tenants[0]["nodes"])
	require.EqualValues(t, 70, tenants[0]["live_bytes"])
	require.EqualValues(t, 2, tenants[1]["nodes"])
	require.EqualValues(t, 400+10+40, tenants[1]["live_bytes"])

	// a stopped persisting ten days ago; b has no channels, so it is not at risk.
	require.Empty(t, h.reportRows("stale", report.Options{}))
	_, err := h.pool.Exec(context.Background(), `UPDATE objects SET updated_at = now() - interval '10 days' WHERE node_key = decode($1, 'hex')`, a.pub)
	require.NoError(t, err)
	stale := h.reportRows("stale", report.Options{})
	require.Len(t, stale, 1)
	require.Equal(t, a.pub, stale[0]["node_key"])
	require.EqualValues(t, 10, stale[0]["days_since_last_persist"])
	require.Empty(t, h.reportRows("stale", report.Options{Since: time.Now().AddDate(0, 0, -11)}))

	// VSS users: one per tenant, one with a bytes quota of its own.
	alice := h.vssUserNamed("/vss", "vss-alice")
	require.NoError(t, alice.put(i64(0), kv("k1", strings.Repeat("x", 30), 0), kv("k2", "yy", 0)))
	require.NoError(t, h.vssUserNamed("/t/acme/vss", "vss-bob").put(nil, kv("k", "z", 0)))
	_, err = h.pool.Exec(context.Background(), `INSERT INTO vss_user_quotas (tenant_id, user_token, quota_bytes, updated_at) VALUES (1, 'vss-alice', 64, now())`)
	require.NoError(t, err)
	users := h.reportRows("vss-users", report.Options{})
	require.Len(t, users, 2)
	require.Equal(t, "acme", users[0]["tenant"])
	require.Equal(t, "vss-bob", users[0]["user_token"])
	require.EqualValues(t, 1, users[0]["bytes"])
	ua := users[1]
	require.Equal(t, "vss-alice", ua["user_token"])
	require.EqualValues(t, 1, ua["stores"])
	require.EqualValues(t, 3, ua["objects"], "two keys and the global version")
	require.EqualValues(t, 32, ua["bytes"])
	require.EqualValues(t, 64, ua["quota_bytes"], "the user's own")
	require.EqualValues(t, 50.0, ua["quota_bytes_pct"])
	require.EqualValues(t, 5000, ua["quota_objects"], "the server's")
	require.NotEmpty(t, ua["last_write"])
	_, err = alice.get("k1")
	require.NoError(t, err)
	require.NoError(t, alice.del(kv("k2", "", -1)))
	_ = alice.list(nil, nil, nil)
	require.NoError(t, h.app.FlushActivity(context.Background()))
	vssDays := map[string]map[string]any{}
	for _, d := range h.reportRows("vss-daily", report.Options{}) {
		vssDays[d["tenant"].(string)] = d
	}
	require.EqualValues(t, 1, vssDays["default"]["puts"])
	require.EqualValues(t, 1, vssDays["default"]["gets"])
	require.Greater(t, vssDays["default"]["bytes_out"], 30.0, "the reply, value and framing")
	require.EqualValues(t, 1, vssDays["default"]["deletes"])
	require.EqualValues(t, 1, vssDays["default"]["lists"])
	require.EqualValues(t, 1, vssDays["default"]["new_users"])
	require.EqualValues(t, 1, vssDays["acme"]["puts"])
	requireReportsPrintAsBefore(t, h)

	// The same figures as CSV, with a header row.
	var out bytes.Buffer
	require.NoError(t, report.Run(context.Background(), h.pool, "tenants", report.Options{Format: "csv"}, time.Now(), &out))
	records, err := csv.NewReader(&out).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 3)
	require.Equal(t, "tenant", records[0][0])
	require.Error(t, report.Run(context.Background(), h.pool, "tenants", report.Options{Since: time.Now()}, time.Now(), io.Discard))
	require.Error(t, report.Run(context.Background(), h.pool, "everything", report.Options{}, time.Now(), io.Discard))
}

// TestReportingRoleSeesOnlyTheViews: the read-only role can select the
// views and nothing else.
func TestReportingRoleSeesOnlyTheViews(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	conn, err := h.pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, "SET ROLE reporting")
	require.NoError(t, err)
	defer conn.Exec(ctx, "RESET ROLE") //nolint:errcheck

	for _, view := range []string{"nodes", "daily", "tenants", "stale_nodes", "node_quotas"} {
		_, err := conn.Exec(ctx, "SELECT * FROM reporting."+view)
		require.NoError(t, err, view)
	}
	for _, stmt := range []string{
		// Qualified: for this role "$user" in the search path is the reporting schema.
		"SELECT * FROM public.objects", "SELECT * FROM public.object_versions", "SELECT * FROM public.auth_sessions",
		"SELECT * FROM public.tenants", "DELETE FROM public.objects", "CREATE TABLE reporting.x (i int)",
		"INSERT INTO public.activity_daily VALUES (now(), 1, 'x', 1, 1)",
	} {
		_, err := conn.Exec(ctx, stmt)
		require.ErrorContains(t, err, "permission denied", stmt)
	}
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RatePerAddressPerMinute = 2 })
	h.clock.AdvanceIntoNextMinute()
	n := newNode(t)
	scrape := h.metrics
	before := scrape()
	require.NotContains(t, before, `route="/persist"`)

	for i := 0; i < 3; i++ {
		require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 1000)).status)
	}
	bad := n.persistHeaders([]byte("x"))
	bad["Signed-Hash"] = newNode(t).persistHeaders([]byte("x"))["Signed-Hash"]
	h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", bad, []byte("x"))
	for i := 0; i < 3; i++ {
		h.do(http.MethodPost, "/v1/auth/challenge", map[string]string{"Public-Key": n.pub}, n.challengeBody(h.clock.Now()))
	}

	after := scrape()
	for _, want := range []string{
		`ldkbackup_http_requests_total{protocol="v1",route="/persist",status="200",tenant="default"} 3`,
		`ldkbackup_http_requests_total{protocol="v1",route="/persist",status="401",tenant="default"} 1`,
		// The failed signature counted against the address (limit 2), so
		// one challenge passes and two are refused.
		`ldkbackup_http_requests_total{protocol="v1",route="/auth/challenge",status="200",tenant="default"} 1`,
		`ldkbackup_http_requests_total{protocol="v1",route="/auth/challenge",status="429",tenant="default"} 2`,
		`ldkbackup_http_request_bytes_total{protocol="v1",route="/persist",tenant="default"} 3001`,
		`ldkbackup_http_request_duration_seconds_count{protocol="v1",route="/persist",tenant="default"} 4`,
		`ldkbackup_events_total{kind="persist",protocol="v1",tenant="default"} 3`,
		`ldkbackup_events_total{kind="signature_failure",protocol="v1",tenant="default"} 1`,
		`ldkbackup_events_total{kind="refused_rate_address",protocol="v1",tenant="default"} 2`,
		// Every kind starts at zero once the tenant is seen, so that
		// rate() counts its first refusal.
		`ldkbackup_events_total{kind="refused_quota",protocol="v1",tenant="default"} 0`,
		`ldkbackup_db_pool_max_connections`,
		`ldkbackup_db_pool_acquires_total`,
		// Asked at the scrape.
		"ldkbackup_ready 1",
		`ldkbackup_db_table_bytes{table="object_versions"}`,
		"ldkbackup_db_size_probe_errors 0",
	} {
		require.Contains(t, after, want)
	}
	require.Regexp(t, `(?m)^ldkbackup_db_size_bytes [1-9]`, after)
	// An unknown tenant's slug is never a label: a prober cannot grow the
	// label set.
	h.do(http.MethodGet, "/t/no-such-tenant/v1/status", nil, nil).requireError(t, http.StatusNotFound)
	after = scrape()
	require.NotContains(t, after, "no-such-tenant")
	require.Contains(t, after, `ldkbackup_http_requests_total{protocol="v1",route="/status",status="404",tenant="none"} 1`)
	// Never on the public port.
	h.do(http.MethodGet, "/metrics", nil, nil).requireError(t, http.StatusNotFound)
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/healthz", nil, nil).status)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/readyz", nil, nil).status)

	// A schema behind this release: not ready, still alive.
	_, err := h.pool.Exec(context.Background(), `UPDATE goose_db_version SET is_applied = false WHERE version_id = (SELECT max(version_id) FROM goose_db_version)`)
	require.NoError(t, err)
	msg := h.do(http.MethodGet, "/readyz", nil, nil).requireError(t, http.StatusServiceUnavailable)
	require.Contains(t, msg, "migration")
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/healthz", nil, nil).status)
}

// TestShutdownLetsAnUploadFinish: SIGTERM (Run's context ending) while a
// large (24 MiB) persist is still arriving: it completes, is committed, and reads
// back; new connections are refused meanwhile; the log says that it drains,
// what is in flight, and that it stopped.
func TestShutdownLetsAnUploadFinish(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// The harness's 5 s would cut the upload off when the race detector and
	// a busy machine slow the rest of its 24 MiB down; this test is about
	// the drain, not the timeout.
	h.cfg.ShutdownTimeout = time.Minute
	a := h.startApp()
	n := newNode(t)
	// More than loopback socket buffers hold, so once the first part is
	// written the server has accepted the connection and is reading.
	body := randomBytes(t, 24<<20)
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, a.URL()+"/v1/persist?network=regtest&label=channel_manager", pr)
	require.NoError(t, err)
	req.ContentLength = int64(len(body))
	for k, v := range n.persistHeaders(body) {
		req.Header.Set(k, v)
	}
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := h.http.Do(req)
		if err != nil {
			done <- nil
			return
		}
		done <- resp
	}()
	_, err = pw.Write(body[:20<<20]) // most of the body is in
	require.NoError(t, err)

	require.EqualValues(t, 1, a.InFlight())
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	draining := h.waitForLog(t, "shutting down: no new connections; draining requests in flight")
	require.EqualValues(t, 1, draining["in_flight"], "the log says what is in flight")
	require.Eventually(t, func() bool {
		_, err := http.Get(a.URL() + "/healthz")
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "no new connections once shutdown began")

	if _, err = pw.Write(body[20<<20:]); err != nil {
		resp := <-done
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("upload cut short: %v; server answered %d %s", err, resp.StatusCode, b)
		}
		t.Fatalf("upload cut short: %v; no answer", err)
	}
	require.NoError(t, pw.Close())
	resp := <-done
	require.NotNil(t, resp, "the in-flight upload got an answer")
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, <-closed)
	h.waitForLog(t, "stopped")

	var size int64
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT size FROM objects WHERE label = 'channel_manager'`).Scan(&size))
	require.EqualValues(t, len(body), size)
	var held []byte
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT payload FROM object_versions`).Scan(&held))
	require.True(t, bytes.Equal(body, held))
}
