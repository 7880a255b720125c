package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/config"
)

// from makes a request look as if it came from addr through the trusted
// proxy on loopback.
func from(addr string, hdr map[string]string) map[string]string {
	out := map[string]string{"X-Forwarded-For": addr}
	for k, v := range hdr {
		out[k] = v
	}
	return out
}

func behindProxy(c *config.Config) { c.TrustedProxies = "127.0.0.1/32" }

func (r response) requireRetryAfter(t *testing.T) int {
	t.Helper()
	var body map[string]any
	require.NoError(t, jsonUnmarshal(r.body, &body))
	require.Contains(t, []any{"address", "node", "new_nodes"}, body["limit"], "a 429 names its limit: %s", r.body)
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After must be whole seconds: %q", r.header.Get("Retry-After"))
	require.Positive(t, secs)
	require.LessOrEqual(t, secs, 3600)
	return secs
}

func (h *harness) usage(n node) (bytes, objects int64) {
	h.t.Helper()
	err := h.pool.QueryRow(context.Background(), `SELECT bytes, objects FROM node_usage WHERE node_key = decode($1, 'hex')`, n.pub).Scan(&bytes, &objects)
	require.NoError(h.t, err)
	return bytes, objects
}

func TestQuotaBytesHoldsUnderConcurrentPersists(t *testing.T) {
	t.Parallel()
	const quota = 10_000
	h := newHarness(t, func(c *config.Config) { c.QuotaBytes = quota })
	n := newNode(t)
	var wg sync.WaitGroup
	type result struct {
		query  string
		status int
	}
	results := make(chan result, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		body := randomBytes(t, 1000)
		query := "network=regtest&label=channel_monitor&channelId=" + fmt.Sprintf("%064x", i)
		go func() {
			defer wg.Done()
			results <- result{query, h.persistRaw(n, query, body).status}
		}()
	}
	wg.Wait()
	close(results)
	counts := map[int]int{}
	var stored string
	for r := range results {
		counts[r.status]++
		if r.status == http.StatusOK {
			stored = r.query
		}
	}
	require.Equal(t, map[int]int{200: 10, 403: 10}, counts, "exactly what fits is stored")
	used, objects := h.usage(n)
	require.EqualValues(t, quota, used)
	require.EqualValues(t, 10, objects)
	var sum int64
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT sum(size) FROM objects`).Scan(&sum))
	require.Equal(t, used, sum, "usage is the sum of the latest versions")

	// The refusal names the quota and changes nothing.
	before := h.snapshot()
	r := h.persistRaw(n, "network=regtest&label=peers", randomBytes(t, 1))
	require.Equal(t, http.StatusForbidden, r.status)
	body := r.json403(t)
	require.Equal(t, "quota exceeded", body["error"])
	require.Equal(t, "bytes", body["quota"])
	require.EqualValues(t, quota, body["limit"])
	require.EqualValues(t, quota, body["used"])
	require.Equal(t, before, h.snapshot())

	// Overwriting counts the difference: a smaller version fits, and frees.
	require.Equal(t, http.StatusOK, h.persistRaw(n, stored, randomBytes(t, 400)).status)
	used, _ = h.usage(n)
	require.EqualValues(t, quota-600, used)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=peers", randomBytes(t, 600)).status)

	// Deleting frees the quota.
	tok := map[string]string{"Authorization": h.login(n)}
	require.Equal(t, http.StatusOK, h.do(http.MethodDelete, "/v1/account?network=regtest", tok, nil).status)
	used, objects = h.usage(n)
	require.Zero(t, used)
	require.Zero(t, objects)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=peers", randomBytes(t, quota)).status)
}

func (r response) json403(t *testing.T) map[string]any {
	t.Helper()
	var body map[string]any
	require.NoError(t, jsonUnmarshal(r.body, &body), "%s", r.body)
	return body
}

func TestQuotaObjects(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.QuotaObjects = 3 })
	n := newNode(t)
	for _, l := range []string{"ping", "peers", "channel_manager"} {
		require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label="+l, randomBytes(t, 10)).status)
	}
	before := h.snapshot()
	r := h.persistRaw(n, "network=regtest&label=addresses", randomBytes(t, 10))
	require.Equal(t, http.StatusForbidden, r.status)
	require.Equal(t, "objects", r.json403(t)["quota"])
	require.Equal(t, before, h.snapshot())
	// A new version of an existing object is no new object.
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 10)).status)
}

func TestNodeQuotaOverride(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.QuotaBytes = 100 })
	n, other := newNode(t), newNode(t)
	_, err := h.pool.Exec(context.Background(), `INSERT INTO node_quotas (tenant_id, node_key, quota_bytes, updated_at) VALUES (1, decode($1, 'hex'), 1000, now())`, n.pub)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 900)).status)
	require.Equal(t, http.StatusForbidden, h.persistRaw(other, "network=regtest&label=ping", randomBytes(t, 900)).status)
}

// TestRateLimitIsSharedByReplicas: two servers on one database count one
// address together; the limit resets with its window.
func TestRateLimitIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RatePerAddressPerMinute = 6 })
	h.clock.AdvanceIntoNextMinute()
	second := h.startReplica()
	n := newNode(t)
	hdr := map[string]string{"Public-Key": n.pub}
	for i := 0; i < 6; i++ {
		base := []string{h.url, second}[i%2]
		require.Equal(t, http.StatusOK, h.doURL(base, http.MethodPost, "/v1/auth/challenge", hdr, n.challengeBody(h.clock.Now())).status, "request %d", i+1)
	}
	before := h.snapshot()
	for _, base := range []string{h.url, second} {
		r := h.doURL(base, http.MethodPost, "/v1/auth/challenge", hdr, n.challengeBody(h.clock.Now()))
		r.requireError(t, http.StatusTooManyRequests)
		r.requireRetryAfter(t)
	}
	require.Equal(t, before, h.snapshot())

	h.clock.Advance(61 * time.Second)
	require.Equal(t, http.StatusOK, h.doURL(second, http.MethodPost, "/v1/auth/challenge", hdr, n.challengeBody(h.clock.Now())).status, "a new window")
}

// TestAddressLimitReachesOtherReplicasWithinCacheTTL: a replica that found
// an address under its limit does not peek at it again for CACHE_TTL, so
// failures counted by another replica refuse the address there within that
// time; the replica that counted them refuses at once.
func TestAddressLimitReachesOtherReplicasWithinCacheTTL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, behindProxy, func(c *config.Config) { c.RatePerAddressPerMinute = 3 })
	h.clock.Freeze() // "within CACHE_TTL" holds however slowly the requests run
	second := h.startReplica()
	a, forger := newNode(t), newNode(t)
	const addr = "198.51.100.30"
	persist := func(base string, hdr map[string]string, body []byte) response {
		return h.doURL(base, http.MethodPost, "/v1/persist?network=regtest&label=channel_manager", from(addr, hdr), body)
	}

	b := randomBytes(t, 64)
	require.Equal(t, http.StatusOK, persist(second, a.persistHeaders(b), b).status, "the second replica finds the address under its limit")
	for i := 0; i < 3; i++ {
		b := randomBytes(t, 64)
		forged := a.persistHeaders(b)
		forged["Signed-Hash"] = forger.persistHeaders(b)["Signed-Hash"]
		require.Equal(t, http.StatusUnauthorized, persist(h.url, forged, b).status, "forgery %d", i+1)
	}
	b = randomBytes(t, 64)
	persist(h.url, a.persistHeaders(b), b).requireError(t, http.StatusTooManyRequests)

	b = randomBytes(t, 64)
	require.Equal(t, http.StatusOK, persist(second, a.persistHeaders(b), b).status, "within CACHE_TTL the second replica still allows it")
	h.clock.Advance(h.cfg.CacheTTL)
	before := h.snapshot()
	b = randomBytes(t, 64)
	r := persist(second, a.persistHeaders(b), b)
	r.requireError(t, http.StatusTooManyRequests)
	r.requireRetryAfter(t)
	require.Equal(t, before, h.snapshot(), "a refused persist stores nothing")
}

// TestLoginsUseUpTheAllowanceAtOnce: logins counted by this replica renew
// its allowance of the address while under the limit, and the one that
// reaches the limit makes this replica refuse the address's next signed
// request at once, cache or not.
func TestLoginsUseUpTheAllowanceAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, behindProxy, func(c *config.Config) { c.RatePerAddressPerMinute = 3; c.CacheTTL = time.Minute })
	h.clock.AdvanceIntoNextMinute()
	n := newNode(t)
	const addr = "198.51.100.40"
	persist := func() response {
		b := randomBytes(t, 64)
		return h.do(http.MethodPost, "/v1/persist?network=regtest&label=channel_manager", from(addr, n.persistHeaders(b)), b)
	}
	challenge := func() response {
		return h.do(http.MethodPost, "/v1/auth/challenge", from(addr, map[string]string{"Public-Key": n.pub}), n.challengeBody(h.clock.Now()))
	}

	require.Equal(t, http.StatusOK, persist().status, "the address is found under its limit")
	for i := 0; i < 2; i++ {
		require.Equal(t, http.StatusOK, challenge().status, "login %d", i+1)
		require.Equal(t, http.StatusOK, persist().status, "under the limit after login %d", i+1)
	}
	require.Equal(t, http.StatusOK, challenge().status, "the login that reaches the limit")
	r := persist()
	r.requireError(t, http.StatusTooManyRequests)
	r.requireRetryAfter(t)
}

// TestForgedRequestsDoNotStopTheNode: a flood of persists claiming node A's
// key with bad signatures gets its own address refused, while A persists.
func TestForgedRequestsDoNotStopTheNode(t *testing.T) {
	t.Parallel()
	// No pacing: a proven persist past the node's allowance is refused at
	// once, so the refusal shows (pacing has tests of its own).
	h := newHarness(t, behindProxy, func(c *config.Config) {
		c.RatePerAddressPerMinute, c.RatePerNodePerMinute, c.PaceMaxWait = 5, 5, 0
	})
	a, forger := newNode(t), newNode(t)
	body := randomBytes(t, 64)
	forged := a.persistHeaders(body)
	forged["Signed-Hash"] = forger.persistHeaders(body)["Signed-Hash"]

	statuses := map[int]int{}
	for i := 0; i < 40; i++ {
		statuses[h.do(http.MethodPost, "/v1/persist?network=regtest&label=channel_manager", from("198.51.100.9", forged), body).status]++
	}
	require.Equal(t, map[int]int{401: 5, 429: 35}, statuses, "five failures, then the address is refused before any signature check")

	// A, from its own address, is untouched: its node allowance was not used.
	for i := 0; i < 5; i++ {
		b := randomBytes(t, 64)
		require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=channel_manager", from("203.0.113.20", a.persistHeaders(b)), b).status, "persist %d", i+1)
	}
	// ... and the per-node limit then applies to A's own proven requests.
	b := randomBytes(t, 64)
	r := h.do(http.MethodPost, "/v1/persist?network=regtest&label=channel_manager", from("203.0.113.20", a.persistHeaders(b)), b)
	r.requireError(t, http.StatusTooManyRequests)
	r.requireRetryAfter(t)
	var refusals int
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT sum(count) FROM node_refusals WHERE kind = 'rate_node'`).Scan(&refusals))
	require.Equal(t, 1, refusals)
}

// TestNodeRateLimitCountsReads: proven reads count against the node with its
// persists. List and retrieve count in their own query: a missing object
// counts, a malformed request (refused before the query) does not, and each
// refusal is recorded for the operator.
func TestNodeRateLimitCountsReads(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RatePerNodePerMinute = 4 })
	h.clock.AdvanceIntoNextMinute()
	n := newNode(t)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", []byte("x")).status) // 1
	tok := map[string]string{"Authorization": h.login(n)}
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/v1/list?network=regtest", tok, nil).status) // 2
	h.do(http.MethodGet, "/v1/retrieve?network=nonet&label=ping", tok, nil).requireError(t, http.StatusBadRequest)
	h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=peers", tok, nil).requireError(t, http.StatusNotFound)   // 3
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=ping", tok, nil).status) // 4
	r := h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=ping", tok, nil)
	r.requireError(t, http.StatusTooManyRequests)
	r.requireRetryAfter(t)
	var refusal map[string]any
	require.NoError(t, jsonUnmarshal(r.body, &refusal))
	require.Equal(t, "node", refusal["limit"])
	h.do(http.MethodGet, "/v1/list?network=regtest", tok, nil).requireError(t, http.StatusTooManyRequests)
	var refusals int
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT sum(count) FROM node_refusals WHERE kind = 'rate_node'`).Scan(&refusals))
	require.Equal(t, 2, refusals)
	h.clock.Advance(61 * time.Second)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=ping", tok, nil).status)
}

func TestNewNodesPerAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, behindProxy, func(c *config.Config) { c.NewNodesPerAddressPerHour = 3 })
	var nodes []node
	for i := 0; i < 3; i++ {
		n := newNode(t)
		nodes = append(nodes, n)
		b := randomBytes(t, 10)
		require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", from("192.0.2.1", n.persistHeaders(b)), b).status)
	}
	before := h.snapshot()
	for i := 0; i < 5; i++ {
		n := newNode(t)
		b := randomBytes(t, 10)
		r := h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", from("192.0.2.1", n.persistHeaders(b)), b)
		r.requireError(t, http.StatusTooManyRequests)
		r.requireRetryAfter(t)
	}
	require.Equal(t, before, h.snapshot(), "a flood of new keys stores nothing")
	// Known nodes keep persisting from that address; other addresses add nodes.
	b := randomBytes(t, 10)
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", from("192.0.2.1", nodes[0].persistHeaders(b)), b).status)
	n := newNode(t)
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", from("192.0.2.2", n.persistHeaders(b)), b).status)
	// An hour later the address may add nodes again.
	h.clock.Advance(time.Hour)
	n = newNode(t)
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", from("192.0.2.1", n.persistHeaders(b)), b).status)
}

// TestForwardedForFromUntrustedPeersIsIgnored: without TRUSTED_PROXIES a
// client cannot pick its address by sending X-Forwarded-For.
func TestForwardedForFromUntrustedPeersIsIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RatePerAddressPerMinute = 3 })
	h.clock.AdvanceIntoNextMinute()
	n := newNode(t)
	for i := 0; i < 3; i++ {
		hdr := from(fmt.Sprintf("203.0.113.%d", i), map[string]string{"Public-Key": n.pub})
		require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/auth/challenge", hdr, n.challengeBody(h.clock.Now())).status)
	}
	hdr := from("203.0.113.99", map[string]string{"Public-Key": n.pub, "X-Real-IP": "203.0.113.98"})
	h.do(http.MethodPost, "/v1/auth/challenge", hdr, n.challengeBody(h.clock.Now())).requireError(t, http.StatusTooManyRequests)
}

func TestRateLimitsOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) {
		c.RateLimits = false
		c.RatePerAddressPerMinute, c.RatePerNodePerMinute, c.NewNodesPerAddressPerHour = 1, 1, 1
		c.QuotaObjects = 2
	})
	n := newNode(t)
	for i := 0; i < 5; i++ {
		require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/auth/challenge", map[string]string{"Public-Key": n.pub}, n.challengeBody(h.clock.Now())).status)
		require.Equal(t, http.StatusOK, h.persistRaw(newNode(t), "network=regtest&label=ping", randomBytes(t, 10)).status)
	}
	require.Equal(t, 0, h.count("rate_limits"), "nothing counted")
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 10)).status)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=peers", randomBytes(t, 10)).status)
	require.Equal(t, http.StatusForbidden, h.persistRaw(n, "network=regtest&label=addresses", randomBytes(t, 10)).status, "quotas stay on")
}

// TestContentLengthThatLies: a body shorter than its Content-Length is a
// 400 and stores nothing.
func TestContentLengthThatLies(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	body := randomBytes(t, 100)
	hdr := n.persistHeaders(body)
	before := h.snapshot()

	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	var req strings.Builder
	req.WriteString("POST /v1/persist?network=regtest&label=ping HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n")
	for k, v := range hdr {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	_, err = conn.Write(append([]byte(req.String()), body...))
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, before, h.snapshot())
}

// TestInFlightBytesAreCapped: while uploads fill the in-flight budget, the
// next persist waits, then gets 503 and stores nothing; once room frees up,
// persists go through.
func TestInFlightBytesAreCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) {
		c.MaxBodyBytes, c.InFlightBytes, c.InFlightWait, c.RetrieveChunkBytes = 64<<10, 64<<10, 300*time.Millisecond, 16<<10
	})
	n := newNode(t)
	big := randomBytes(t, 64<<10)
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, h.url+"/v1/persist?network=regtest&label=channel_manager", pr)
	require.NoError(t, err)
	req.ContentLength = int64(len(big))
	for k, v := range n.persistHeaders(big) {
		req.Header.Set(k, v)
	}
	done := make(chan int, 1)
	go func() {
		resp, err := h.http.Do(req)
		if err != nil {
			t.Log("hog:", err)
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	_, err = pw.Write(big[:60<<10]) // the upload is in flight: its buffer holds the whole budget
	require.NoError(t, err)
	waitFor(t, "the upload to hold the budget", func() bool { return h.budgetHeld(1024) })

	before := h.snapshot()
	r := h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 1024))
	r.requireError(t, http.StatusServiceUnavailable)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	require.Equal(t, before, h.snapshot())

	_, err = pw.Write(big[60<<10:])
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	require.Equal(t, http.StatusOK, <-done)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 1024)).status)
}

// TestTricklingUploadsHoldOnlyWhatTheySent: uploads that declare large
// bodies and send them slowly do not stop other persists, since memory is
// taken from the budget as bytes arrive, not as declared.
func TestTricklingUploadsHoldOnlyWhatTheySent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) {
		c.MaxBodyBytes, c.InFlightBytes, c.InFlightWait = 1<<20, 1<<20, 300*time.Millisecond
	})
	n := newNode(t)
	var pipes []*io.PipeWriter
	for i := 0; i < 8; i++ { // 8 × 1 MiB declared: eight times the budget
		big := randomBytes(t, 1<<20)
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		req, err := http.NewRequest(http.MethodPost, h.url+"/v1/persist?network=regtest&label=channel_monitor&channelId="+fmt.Sprintf("%064x", i), pr)
		require.NoError(t, err)
		req.ContentLength = int64(len(big))
		for k, v := range n.persistHeaders(big) {
			req.Header.Set(k, v)
		}
		go func() {
			if resp, err := h.http.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		_, err = pw.Write(big[:100])
		require.NoError(t, err)
	}
	// Each has taken the first chunk of its buffer (16 KiB) before reading.
	waitFor(t, "the eight uploads to hold their first chunks", func() bool { return h.budgetHeld(1<<20 - 8*16<<10 + 1) })
	for i := 0; i < 3; i++ {
		require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 64<<10)).status)
	}
	for _, pw := range pipes {
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}
}

// budgetHeld reports whether fewer than size bytes of the in-flight budget
// are free: a persist of size bytes then waits IN_FLIGHT_WAIT and gets 503.
// Its signature is forged, so when the budget is free it is refused (401)
// once read and stores nothing either way.
func (h *harness) budgetHeld(size int) bool {
	h.t.Helper()
	body := randomBytes(h.t, size)
	hdr := newNode(h.t).persistHeaders(body)
	hdr["Signed-Hash"] = newNode(h.t).sign(hex.EncodeToString(body[:32]))
	switch s := h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", hdr, body).status; s {
	case http.StatusServiceUnavailable:
		return true
	case http.StatusUnauthorized:
		return false
	default:
		h.t.Fatalf("probe of the in-flight budget: status %d", s)
		return false
	}
}

// persistChunked sends body as n without a Content-Length (chunked), as a
// client streaming its upload does.
func (h *harness) persistChunked(n node, query string, body []byte) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+"/v1/persist?"+query, io.MultiReader(bytes.NewReader(body)))
	require.NoError(h.t, err)
	req.ContentLength = -1
	for k, v := range n.persistHeaders(body) {
		req.Header.Set(k, v)
	}
	return h.send(req)
}

// sendHead opens a connection and writes only the head of a request: its
// body is the caller's to send, or never to send.
func (h *harness) sendHead(method, target string, header map[string]string) (net.Conn, *bufio.Reader) {
	h.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	require.NoError(h.t, err)
	h.t.Cleanup(func() { _ = conn.Close() })
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: x\r\n", method, target)
	for k, v := range header {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	_, err = conn.Write([]byte(head.String()))
	require.NoError(h.t, err)
	return conn, bufio.NewReader(conn)
}

// TestInFlightWaitZeroDoesNotWait: IN_FLIGHT_WAIT=0 means a persist takes
// the in-flight budget if it is free now, else gets 503 at once. An idle
// server accepts persists, also ones that take their budget in several
// steps.
func TestInFlightWaitZeroDoesNotWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) {
		c.MaxBodyBytes, c.InFlightBytes, c.InFlightWait, c.RetrieveChunkBytes = 64<<10, 64<<10, 0, 16<<10
	})
	n := newNode(t)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 1024)).status, "an idle server has room")
	require.Equal(t, http.StatusOK, h.persistChunked(n, "network=regtest&label=peers", randomBytes(t, 40<<10)).status)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", randomBytes(t, 64<<10)).status, "a body of the whole budget")

	// An upload of 16 KiB takes its whole buffer from the budget before its
	// first read, and the server's "100 Continue" is that first read.
	held := randomBytes(t, 16<<10)
	hdr := n.persistHeaders(held)
	hdr["Content-Length"], hdr["Expect"] = fmt.Sprint(len(held)), "100-continue"
	conn, rd := h.sendHead(http.MethodPost, "/v1/persist?network=regtest&label=bitkit_wallet", hdr)
	cont, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusContinue, cont.StatusCode)

	// 48 KiB are free: a 48 KiB body fits, a 64 KiB one is refused at once.
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=addresses", randomBytes(t, 48<<10)).status)
	before := h.snapshot()
	r := h.persistRaw(n, "network=regtest&label=channel_manager", randomBytes(t, 64<<10))
	r.requireError(t, http.StatusServiceUnavailable)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	require.Equal(t, before, h.snapshot(), "a refused persist stores nothing")

	_, err = conn.Write(held)
	require.NoError(t, err)
	resp, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", randomBytes(t, 64<<10)).status, "the budget is free again")
}

// TestChunkedBodyAtTheLimitWithTheBudgetAtTheLimit: with IN_FLIGHT_BYTES ==
// MAX_BODY_BYTES, a body without a length of exactly the limit is accepted
// and one byte more is 413 (not 503): telling the two apart takes no budget
// beyond the limit.
func TestChunkedBodyAtTheLimitWithTheBudgetAtTheLimit(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	h := newHarness(t, func(c *config.Config) { c.MaxBodyBytes, c.InFlightBytes, c.RetrieveChunkBytes = limit, limit, 16<<10 })
	n := newNode(t)

	body := randomBytes(t, limit)
	require.Equal(t, http.StatusOK, h.persistChunked(n, "network=regtest&label=channel_manager", body).status)
	tok := map[string]string{"Authorization": h.login(n)}
	require.Equal(t, body, h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=channel_manager", tok, nil).body)

	before := h.snapshot()
	h.persistChunked(n, "network=regtest&label=peers", randomBytes(t, limit+1)).requireError(t, http.StatusRequestEntityTooLarge)
	require.Equal(t, before, h.snapshot(), "a refused persist stores nothing")
	require.Equal(t, http.StatusOK, h.persistChunked(n, "network=regtest&label=peers", randomBytes(t, limit-1)).status, "the refusal gave its budget back")
}

// TestUnprovenRequestsCountAgainstTheAddress: signed requests that never
// prove themselves count against the client address like forged ones: a
// flood of malformed 4 MiB persists is refused (429) once the address's
// allowance is used, and so are oversized, mistyped and empty ones. A
// proven reader's malformed query does not count. Nothing is stored.
func TestUnprovenRequestsCountAgainstTheAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, behindProxy, func(c *config.Config) { c.RatePerAddressPerMinute = 3 })
	h.clock.AdvanceIntoNextMinute()
	n := newNode(t)
	const query = "/v1/persist?network=regtest&label=channel_manager"
	before := h.snapshot()

	// Large, but under what a refusal drains (1 MiB): a refused body that is
	// larger makes the server close a connection the client is still writing
	// to, and the client may see the reset before the answer.
	big := randomBytes(t, 768<<10)
	malformed := n.persistHeaders(big)
	malformed["Public-Key"] = "zz" + n.pub[2:]
	for i := 0; i < 3; i++ {
		h.do(http.MethodPost, query, from("198.51.100.60", malformed), big).requireError(t, http.StatusBadRequest)
	}
	for i := 0; i < 10; i++ {
		r := h.do(http.MethodPost, query, from("198.51.100.60", malformed), big)
		r.requireError(t, http.StatusTooManyRequests)
		r.requireRetryAfter(t)
	}

	const addr = "198.51.100.61"
	small := randomBytes(t, 64)
	mistyped := n.persistHeaders(small)
	mistyped["Content-Type"] = "text/plain"
	h.do(http.MethodPost, query, from(addr, mistyped), small).requireError(t, http.StatusUnsupportedMediaType)
	h.do(http.MethodPost, query, from(addr, n.persistHeaders(nil)), nil).requireError(t, http.StatusBadRequest)
	oversized := from(addr, n.persistHeaders(small))
	oversized["Content-Length"] = fmt.Sprint(h.cfg.MaxBodyBytes + 1)
	_, rd := h.sendHead(http.MethodPost, query, oversized)
	resp, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	h.do(http.MethodPost, query, from(addr, n.persistHeaders(small)), small).requireError(t, http.StatusTooManyRequests)
	require.Equal(t, before, h.snapshot(), "refused persists store nothing")

	// The token proves the node: its reader's mistakes are no probe.
	tok := map[string]string{"Authorization": h.login(n)}
	for i := 0; i < 5; i++ {
		h.do(http.MethodGet, "/v1/list?network=nonet", from("198.51.100.62", tok), nil).requireError(t, http.StatusBadRequest)
	}
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/v1/list?network=regtest", from("198.51.100.62", tok), nil).status)
}

// TestEveryRefusalIsCountedByItsKind: each refusal is counted once under
// its own kind, in the node's refusals (for the node's own requests) and in
// the daily activity, whichever layer refused it.
func TestEveryRefusalIsCountedByItsKind(t *testing.T) {
	t.Parallel()
	h := newHarness(t, behindProxy, func(c *config.Config) {
		c.RatePerAddressPerMinute, c.RatePerNodePerMinute, c.NewNodesPerAddressPerHour = 3, 3, 1
		c.PaceMaxWait = 0
		c.QuotaBytes, c.QuotaObjects, c.QuotaUploads = 100, 1, 2
		c.MaxBodyBytes = 1000
	})
	h.clock.Freeze()
	persist := func(n node, addr, label string, body []byte) response {
		return h.do(http.MethodPost, "/v1/persist?network=regtest&label="+label, from(addr, n.persistHeaders(body)), body)
	}
	nodes := map[string]node{}
	for _, name := range []string{"first", "second", "rate", "objects", "bytes", "uploads", "replay"} {
		nodes[name] = newNode(t)
	}

	require.Equal(t, http.StatusOK, persist(nodes["first"], "198.51.100.1", "ping", []byte("a")).status)
	persist(nodes["second"], "198.51.100.1", "ping", []byte("b")).requireError(t, http.StatusTooManyRequests) // new nodes

	for range 3 { // retries of the latest bytes: counted by the rate limit, not as uploads
		require.Equal(t, http.StatusOK, persist(nodes["rate"], "198.51.100.2", "ping", []byte("a")).status)
	}
	persist(nodes["rate"], "198.51.100.2", "ping", []byte("d")).requireError(t, http.StatusTooManyRequests) // node, persist
	tok := map[string]string{"Authorization": h.login(nodes["rate"])}
	h.do(http.MethodGet, "/v1/list?network=regtest", tok, nil).requireError(t, http.StatusTooManyRequests) // node, read

	require.Equal(t, http.StatusOK, persist(nodes["objects"], "198.51.100.3", "ping", []byte("a")).status)
	persist(nodes["objects"], "198.51.100.3", "peers", []byte("b")).requireError(t, http.StatusForbidden)
	persist(nodes["bytes"], "198.51.100.4", "ping", make([]byte, 101)).requireError(t, http.StatusForbidden)
	require.Equal(t, http.StatusOK, persist(nodes["uploads"], "198.51.100.5", "ping", []byte("a")).status)
	require.Equal(t, http.StatusOK, persist(nodes["uploads"], "198.51.100.5", "ping", []byte("b")).status)
	persist(nodes["uploads"], "198.51.100.5", "ping", []byte("c")).requireError(t, http.StatusForbidden)
	require.Equal(t, http.StatusOK, persist(nodes["replay"], "198.51.100.6", "ping", []byte("a")).status)
	require.Equal(t, http.StatusOK, persist(nodes["replay"], "198.51.100.6", "ping", []byte("b")).status)
	persist(nodes["replay"], "198.51.100.6", "ping", []byte("a")).requireError(t, http.StatusConflict)
	persist(nodes["first"], "198.51.100.7", "ping", make([]byte, 1001)).requireError(t, http.StatusRequestEntityTooLarge)
	for range 3 {
		b := []byte("forged")
		forged := nodes["first"].persistHeaders(b)
		forged["Signed-Hash"] = nodes["second"].persistHeaders(b)["Signed-Hash"]
		h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", from("198.51.100.8", forged), b).requireError(t, http.StatusUnauthorized)
	}
	persist(nodes["first"], "198.51.100.8", "ping", []byte("e")).requireError(t, http.StatusTooManyRequests) // address

	ctx := context.Background()
	rows, err := h.pool.Query(ctx, `SELECT encode(node_key, 'hex'), kind, count FROM node_refusals`)
	require.NoError(t, err)
	got := map[string]int{}
	for rows.Next() {
		var pub, kind string
		var n int
		require.NoError(t, rows.Scan(&pub, &kind, &n))
		for name, nd := range nodes {
			if nd.pub == pub {
				got[name+" "+kind] += n
			}
		}
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]int{
		"second new_nodes_per_address": 1,
		"rate rate_node":               2,
		"objects quota_objects":        1,
		"bytes quota_bytes":            1,
		"uploads quota_uploads":        1,
	}, got)

	require.NoError(t, h.app.FlushActivity(ctx))
	activity := map[string]int{}
	rows, err = h.pool.Query(ctx, `SELECT kind, sum(count)::int FROM activity_daily WHERE kind LIKE 'refused_%' GROUP BY kind`)
	require.NoError(t, err)
	for rows.Next() {
		var kind string
		var n int
		require.NoError(t, rows.Scan(&kind, &n))
		activity[kind] = n
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]int{
		"refused_new_nodes": 1, "refused_rate_node": 2, "refused_quota": 3, "refused_replay": 1,
		"refused_body_size": 1, "refused_rate_address": 1,
	}, activity)
}
