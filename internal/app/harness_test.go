package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/app"
	"ldkbackup/internal/client"
	"ldkbackup/internal/config"
	"ldkbackup/internal/lnsig"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/tenant"
)

// clock is the servers' clock in a test: real time plus an offset the test
// moves forward to expire challenges and tokens, and to end the waits of
// paced persists (Sleep ends when the clock reaches its deadline, by real
// time or by Advance). A test that asserts what holds until a deadline
// freezes it, so that only Advance moves it and a slow machine cannot carry
// a request past the deadline.
type clock struct {
	mu       sync.Mutex
	offset   time.Duration
	frozen   *time.Time    // when set, real time no longer moves the clock
	advanced chan struct{} // closed and replaced by every Advance
	sleepers int
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now()
}

func (c *clock) now() time.Time {
	if c.frozen != nil {
		return c.frozen.Add(c.offset)
	}
	return time.Now().Add(c.offset)
}

// Freeze stops the clock where it is: from now on only Advance moves it.
func (c *clock) Freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.frozen = &now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
	if c.advanced != nil {
		close(c.advanced)
	}
	c.advanced = make(chan struct{})
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	deadline := c.now().Add(d)
	c.sleepers++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.sleepers--
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		left := deadline.Sub(c.now())
		if c.advanced == nil {
			c.advanced = make(chan struct{})
		}
		advanced, frozen := c.advanced, c.frozen != nil
		c.mu.Unlock()
		if left <= 0 {
			return nil
		}
		var timer *time.Timer
		var timeout <-chan time.Time // nil when frozen: only Advance ends the wait
		if !frozen {
			timer = time.NewTimer(left)
			timeout = timer.C
		}
		select {
		case <-timeout:
		case <-advanced:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Sleepers is how many Sleeps are waiting now: the paced persists.
func (c *clock) Sleepers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sleepers
}

// AdvanceIntoNextMinute moves the clock to 5 s into the next minute, so a
// test of one-minute rate windows runs inside one window.
func (c *clock) AdvanceIntoNextMinute() {
	now := c.Now()
	c.Advance(now.Truncate(time.Minute).Add(time.Minute + 5*time.Second).Sub(now))
}

// harness is one real server on :0 over its own PostgreSQL database.
type harness struct {
	t         testing.TB
	cfg       config.Config
	url       string
	pool      *pgxpool.Pool
	serverPub string
	clock     *clock
	http      *http.Client
	app       *app.App // the first server
	logs      *logBuffer
	opts      []app.Option
}

// logBuffer keeps what the servers log, as JSON lines, for the tests that
// check them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns every line logged so far, decoded.
func (b *logBuffer) lines(t testing.TB) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// waitForLog waits until a line with message msg is logged and returns it.
func (h *harness) waitForLog(t testing.TB, msg string) map[string]any {
	t.Helper()
	var found map[string]any
	require.Eventually(t, func() bool {
		for _, l := range h.logs.lines(t) {
			if l["msg"] == msg {
				found = l
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no log line %q", msg)
	return found
}

// waitForRequestLog waits for the request line of request id and returns
// it (the line is written once the reply is out).
func (h *harness) waitForRequestLog(t testing.TB, id string) map[string]any {
	t.Helper()
	var found map[string]any
	require.Eventually(t, func() bool {
		for _, l := range h.logs.lines(t) {
			if l["msg"] == "request" && l["request_id"] == id {
				found = l
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no request line for %s", id)
	return found
}

func newHarness(t testing.TB, configure ...func(*config.Config)) *harness {
	t.Helper()
	return startHarness(t, []app.Option{app.WithVSSAuthorizers(testVSSAuthorizers)}, configure...)
}

// newAuthHarness is a harness whose VSS requests are authorized as in
// production: by each tenant's chosen scheme.
func newAuthHarness(t testing.TB, configure ...func(*config.Config)) *harness {
	t.Helper()
	return startHarness(t, nil, configure...)
}

func startHarness(t testing.TB, opts []app.Option, configure ...func(*config.Config)) *harness {
	t.Helper()
	pool, dbURL := pgtest.NewPool(t)
	secret, public, err := config.GenerateKeyPair()
	require.NoError(t, err)

	cfg := config.Default()
	cfg.Host, cfg.Port = "127.0.0.1", 0
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.DatabaseURL = dbURL
	cfg.SecretKey, cfg.PublicKey = secret, public
	cfg.KeyEncryptionKey = hex.EncodeToString(randomBytes(t, 32))
	cfg.ShutdownTimeout = 5 * time.Second
	for _, f := range configure {
		f(&cfg)
	}
	h := &harness{t: t, cfg: cfg, pool: pool, serverPub: public, clock: &clock{}, http: &http.Client{Timeout: 60 * time.Second}, logs: &logBuffer{}, opts: opts}
	h.url = h.startReplica()
	return h
}

// startReplica starts another server process-equivalent on the same database
// and returns its URL.
func (h *harness) startReplica() string {
	h.t.Helper()
	return h.startApp().URL()
}

func (h *harness) startApp() *app.App {
	h.t.Helper()
	logger := slog.New(slog.NewJSONHandler(h.logs, nil))
	a, err := app.New(context.Background(), h.cfg, logger, h.clock, h.opts...)
	require.NoError(h.t, err)
	require.NoError(h.t, a.Start())
	h.t.Cleanup(func() { _ = a.Close() })
	if h.app == nil {
		h.app = a
	}
	return a
}

// addTenant creates a tenant as the operator's CLI does and returns the
// server public key its app pins.
func (h *harness) addTenant(slug string) string {
	h.t.Helper()
	kek, err := h.cfg.KEK()
	require.NoError(h.t, err)
	r, err := tenant.NewDirectory(postgres.NewStore(h.pool), tenant.Config{KEK: kek}, time.Now).Create(context.Background(), slug, "Tenant "+slug)
	require.NoError(h.t, err)
	return hex.EncodeToString(r.PublicKey)
}

// newClient returns a client with a fresh node key, pinned to this server.
func (h *harness) newClient(style client.TimestampStyle) *client.Client {
	return h.clientFor(h.url, newNode(h.t).secret, style)
}

func (h *harness) clientFor(url string, secret []byte, style client.TimestampStyle) *client.Client {
	h.t.Helper()
	return h.tenantClient(url, h.serverPub, secret, style)
}

// tenantClient is a wallet of the app at baseURL that pinned serverPub.
func (h *harness) tenantClient(baseURL, serverPub string, secret []byte, style client.TimestampStyle) *client.Client {
	h.t.Helper()
	c, err := client.New(client.Config{
		BaseURL:      baseURL,
		Network:      "regtest",
		NodeSecret:   secret,
		ServerPubKey: serverPub,
		Timestamps:   style,
		HTTPClient:   h.http,
	})
	require.NoError(h.t, err)
	return c
}

// snapshot renders every row of every table of stored data, so a test can
// assert that a refused request changed nothing. Rate counters and refusal
// counts are left out: counting a refused request is their job.
func (h *harness) snapshot() string {
	h.t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT id, tenant_id, node_key, network, label, channel_id, latest_version, size, sha256, created_at, updated_at FROM objects ORDER BY id`,
		`SELECT object_id, version, md5(payload), size, sha256, created_at FROM object_versions ORDER BY object_id, version`,
		`SELECT node_id, digest, day FROM upload_hashes ORDER BY node_id, digest`,
		`SELECT id, tenant_id, node_key, action, network, detail, created_at FROM audit_log ORDER BY id`,
		`SELECT tenant_id, label, label_group, created_at FROM tenant_labels ORDER BY tenant_id, label`,
		`SELECT tenant_id, node_key, bytes, objects, uploads, first_seen FROM node_usage ORDER BY tenant_id, node_key`,
		`SELECT tenant_id, node_key, quota_bytes, quota_objects, quota_uploads, updated_at FROM node_quotas ORDER BY tenant_id, node_key`,
		`SELECT challenge, tenant_id, node_key, created_at, expires_at FROM auth_challenges ORDER BY challenge`,
		`SELECT token_hash, tenant_id, node_key, created_at, expires_at FROM auth_sessions ORDER BY token_hash`,
		`SELECT id, slug, name, created_at, disabled_at FROM tenants ORDER BY id`,
		`SELECT id, tenant_id, user_token, bytes, objects, first_seen, last_write FROM vss_users ORDER BY id`,
		`SELECT user_id, store_id, key, md5(value), size, version, revision, seq, created_at, updated_at FROM vss_objects ORDER BY user_id, store_id, key`,
		`SELECT tenant_id, user_token, quota_bytes, quota_objects, updated_at FROM vss_user_quotas ORDER BY tenant_id, user_token`,
	} {
		rows, err := h.pool.Query(context.Background(), q)
		require.NoError(h.t, err)
		for rows.Next() {
			vals, err := rows.Values()
			require.NoError(h.t, err)
			fmt.Fprintln(&b, vals...)
		}
		require.NoError(h.t, rows.Err())
		b.WriteString("--\n")
	}
	return b.String()
}

func (h *harness) count(table string) int {
	h.t.Helper()
	var n int
	require.NoError(h.t, h.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// metrics scrapes the first server's admin listener.
func (h *harness) metrics() string {
	h.t.Helper()
	resp, err := h.http.Get("http://" + h.app.AdminAddr() + "/metrics")
	require.NoError(h.t, err)
	defer resp.Body.Close()
	require.Equal(h.t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return string(b)
}

// response is a raw HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a raw request, for the tests that must send what no well-behaved
// client would.
func (h *harness) do(method, path string, header map[string]string, body []byte) response {
	h.t.Helper()
	return h.doURL(h.url, method, path, header, body)
}

func (h *harness) doURL(base, method, path string, header map[string]string, body []byte) response {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, r)
	require.NoError(h.t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return h.send(req)
}

// send sends req and reads the whole answer.
func (h *harness) send(req *http.Request) response {
	h.t.Helper()
	resp, err := h.http.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// requireError asserts the status and a JSON body of {"error": "..."}: only
// refusals by a limit (403, 429) may add fields naming the limit.
func (r response) requireError(t testing.TB, status int) string {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	var body map[string]any
	require.NoError(t, json.Unmarshal(r.body, &body), "error body must be JSON: %s", r.body)
	if status != http.StatusForbidden && status != http.StatusTooManyRequests {
		require.Len(t, body, 1, "error body must hold only \"error\": %s", r.body)
	}
	msg, ok := body["error"].(string)
	require.True(t, ok, "error must be a string: %s", r.body)
	require.NotEmpty(t, msg)
	return msg
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var body map[string]any
	require.NoError(t, json.Unmarshal(r.body, &body), "%s", r.body)
	return body
}

// node is a wallet's key, for building requests by hand.
type node struct {
	secret []byte
	key    *btcec.PrivateKey
	pub    string
}

func newNode(t testing.TB) node {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	return node{secret: key.Serialize(), key: key, pub: hex.EncodeToString(key.PubKey().SerializeCompressed())}
}

func (n node) sign(payload string) string { return lnsig.SignBackup(n.key, payload) }

// persistHeaders are the headers the apps send with body.
func (n node) persistHeaders(body []byte) map[string]string {
	return client.PersistHeaders(n.key, sha256.Sum256(body), client.PersistChallenge(n.pub, client.AndroidTimestamps, time.Now()))
}

// challengeBody is an Android-style auth/challenge body signed at t.
func (n node) challengeBody(at time.Time) []byte {
	ts := fmt.Sprint(at.UnixMilli())
	return []byte(fmt.Sprintf(`{"timestamp":%s,"signature":%q}`, ts, n.sign(ts)))
}

// challenge asks h for a login challenge and returns it.
func (h *harness) challenge(base string, n node) string {
	h.t.Helper()
	r := h.doURL(base, http.MethodPost, "/v1/auth/challenge", map[string]string{"Public-Key": n.pub, "Content-Type": "application/json"}, n.challengeBody(h.clock.Now()))
	c, ok := r.json(h.t)["challenge"].(string)
	require.True(h.t, ok)
	require.Len(h.t, c, 64)
	return c
}

// respond answers a challenge and returns the raw response.
func (h *harness) respond(base string, n node, challenge string) response {
	h.t.Helper()
	body := []byte(fmt.Sprintf(`{"signature":%q}`, n.sign(challenge)))
	return h.doURL(base, http.MethodPost, "/v1/auth/response", map[string]string{"Public-Key": n.pub, "Content-Type": "application/json"}, body)
}

// challengeAt and respondAt log in under a tenant prefix such as "/t/acme".
func (h *harness) challengeAt(prefix string, n node) string { return h.challenge(h.url+prefix, n) }

func (h *harness) respondAt(prefix string, n node, challenge string) response {
	return h.respond(h.url+prefix, n, challenge)
}

// rawRequest writes a request exactly as given (no client normalises its
// path) and returns the status code.
func (h *harness) rawRequest(req string) int {
	h.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	require.NoError(h.t, err)
	defer conn.Close()
	_, err = conn.Write([]byte(req))
	require.NoError(h.t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	return resp.StatusCode
}

// login runs challenge and response and returns the bearer token.
func (h *harness) login(n node) string {
	h.t.Helper()
	tok, ok := h.respond(h.url, n, h.challenge(h.url, n)).json(h.t)["bearer"].(string)
	require.True(h.t, ok)
	return tok
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
