package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/client"
	"ldkbackup/internal/config"
	"ldkbackup/internal/lnsig"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func channelID(t *testing.T) string { return hex.EncodeToString(randomBytes(t, 32)) }

func TestStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	body := h.do(http.MethodGet, "/v1/status", nil, nil).json(t)
	require.Equal(t, "world", body["hello"])
	require.Equal(t, "ok", body["status"])
}

// TestRoundTripLikeTheApps stores what a wallet stores and restores it with
// a second client that knows nothing but the seed, for both timestamp styles.
func TestRoundTripLikeTheApps(t *testing.T) {
	t.Parallel()
	for name, style := range map[string]client.TimestampStyle{"android": client.AndroidTimestamps, "ios": client.IOSTimestamps} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			ctx := context.Background()
			n := newNode(t)
			wallet := h.clientFor(h.url, n.secret, style)

			mon1, mon2 := channelID(t), channelID(t)
			files := map[string][]byte{
				"channel_manager.bin": randomBytes(t, 4096),
				"peers.bin":           []byte(`["peer1"]`),
				"ping.bin":            []byte("ping42"),
			}
			monitors := map[string][]byte{mon1 + ".bin": randomBytes(t, 2048), mon2 + ".bin": randomBytes(t, 100)}
			for name, b := range files {
				_, err := wallet.Persist(ctx, strings.TrimSuffix(name, ".bin"), "", b)
				require.NoError(t, err)
			}
			for name, b := range monitors {
				_, err := wallet.Persist(ctx, "channel_monitor", strings.TrimSuffix(name, ".bin"), b)
				require.NoError(t, err)
			}
			_, err := wallet.Persist(ctx, "bitkit_settings", "", []byte(`{"theme":"dark"}`))
			require.NoError(t, err)

			restored := h.clientFor(h.url, n.secret, style)
			backup, err := restored.Restore(ctx)
			require.NoError(t, err)
			want := maps.Clone(files)
			if style == client.IOSTimestamps {
				delete(want, "ping.bin") // the Swift app leaves the self-check file out of a restore
			}
			require.Equal(t, want, backup.Files, "ldk group: ldk labels only")
			require.Equal(t, monitors, backup.ChannelFiles)

			all, err := restored.List(ctx, "all")
			require.NoError(t, err)
			require.ElementsMatch(t, []string{"bitkit_settings.bin", "channel_manager.bin", "peers.bin", "ping.bin"}, all.List)
			require.ElementsMatch(t, []string{mon1 + ".bin", mon2 + ".bin"}, all.ChannelMonitors)

			bitkit, err := restored.List(ctx, "bitkit")
			require.NoError(t, err)
			require.Equal(t, []string{"bitkit_settings.bin"}, bitkit.List)
			require.Empty(t, bitkit.ChannelMonitors)

			got, err := restored.Retrieve(ctx, "bitkit_settings", "")
			require.NoError(t, err)
			require.Equal(t, `{"theme":"dark"}`, string(got))
		})
	}
}

// TestWireShapes checks the exact JSON the apps decode.
func TestWireShapes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	body := randomBytes(t, 64)
	hdr := n.persistHeaders(body)
	r := h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", hdr, body)
	persisted := r.json(t)
	require.Equal(t, true, persisted["success"])
	sig, ok := persisted["signature"].(string)
	require.True(t, ok)
	require.NoError(t, lnsig.VerifyBackupHex(h.serverPub, hdr["Challenge"], sig), "reply must be signed by the pinned server key over the Challenge")

	// Header names are case-insensitive.
	lower := map[string]string{}
	for k, v := range n.persistHeaders(body) {
		lower[strings.ToLower(k)] = v
	}
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", lower, body).status)

	// auth/response: "expires" is a JSON integer of milliseconds, ~5 minutes ahead.
	r = h.respond(h.url, n, h.challenge(h.url, n))
	require.Equal(t, http.StatusOK, r.status)
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var tok map[string]any
	require.NoError(t, dec.Decode(&tok))
	exp, err := strconv.ParseInt(string(tok["expires"].(json.Number)), 10, 64)
	require.NoError(t, err, "expires must be an integer: %s", r.body)
	require.InDelta(t, time.Now().Add(5*time.Minute).UnixMilli(), exp, 5000)
	bearer := tok["bearer"].(string)

	// list of a node with nothing on that network: both arrays present and empty.
	r = h.do(http.MethodGet, "/v1/list?network=bitcoin", map[string]string{"Authorization": bearer}, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"list":[],"channel_monitors":[]}`, string(r.body))

	// retrieve: exact bytes, octet-stream, correct Content-Length; "Bearer " prefix accepted.
	r = h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=ping", map[string]string{"Authorization": "Bearer " + bearer, "Content-Type": "application/json"}, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, body, r.body)
	require.Equal(t, "application/octet-stream", r.header.Get("Content-Type"))
	require.Equal(t, strconv.Itoa(len(body)), r.header.Get("Content-Length"))

	// A missing object is a 404 with an error body.
	h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=peers", map[string]string{"Authorization": bearer}, nil).requireError(t, http.StatusNotFound)
}

func TestOverwriteReturnsNewest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	c := h.newClient(client.AndroidTimestamps)
	for i := 0; i < 3; i++ {
		_, err := c.Persist(ctx, "channel_manager", "", []byte(fmt.Sprintf("state %d", i)))
		require.NoError(t, err)
	}
	got, err := c.Retrieve(ctx, "channel_manager", "")
	require.NoError(t, err)
	require.Equal(t, "state 2", string(got))
	require.Equal(t, 1, h.count("objects"))
}

func TestLargeObjectRoundTrip(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	c := h.newClient(client.AndroidTimestamps)
	big := randomBytes(t, 5<<20)
	_, err := c.Persist(ctx, "channel_manager", "", big)
	require.NoError(t, err)
	got, err := c.Retrieve(ctx, "channel_manager", "")
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got), "5 MiB object must round-trip byte-identical")
}

// TestMaxBodyAccepted sends a body of exactly the default limit (32 MiB).
func TestMaxBodyAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	require.EqualValues(t, 32<<20, h.cfg.MaxBodyBytes)
	n := newNode(t)
	body := randomBytes(t, int(h.cfg.MaxBodyBytes))
	r := h.do(http.MethodPost, "/v1/persist?network=bitcoin&label=channel_manager", n.persistHeaders(body), body)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var size int64
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT size FROM objects`).Scan(&size))
	require.EqualValues(t, 32<<20, size)
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	na := newNode(t)
	a, b := h.clientFor(h.url, na.secret, client.AndroidTimestamps), h.newClient(client.IOSTimestamps)
	mon := channelID(t)
	_, err := a.Persist(ctx, "channel_monitor", mon, []byte("a's monitor"))
	require.NoError(t, err)
	_, err = a.Persist(ctx, "channel_manager", "", []byte("a's manager"))
	require.NoError(t, err)

	l, err := b.List(ctx, "all")
	require.NoError(t, err)
	require.Empty(t, l.List)
	require.Empty(t, l.ChannelMonitors)
	_, err = b.Retrieve(ctx, "channel_monitor", mon)
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = b.Retrieve(ctx, "channel_manager", "")
	require.ErrorIs(t, err, client.ErrNotFound)

	// The same key on another network is a separate space too.
	testnet, err := client.New(client.Config{BaseURL: h.url, Network: "testnet", NodeSecret: na.secret, ServerPubKey: h.serverPub})
	require.NoError(t, err)
	l, err = testnet.List(ctx, "all")
	require.NoError(t, err)
	require.Empty(t, l.List)
	require.Empty(t, l.ChannelMonitors)
}

func TestConcurrentPersistsAcrossNodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	const nodes, perNode = 10, 5
	clients := make([]*client.Client, nodes)
	for i := range clients {
		clients[i] = h.newClient(client.AndroidTimestamps)
	}
	type obj struct {
		node    int
		channel string
		data    []byte
	}
	var objs []obj
	for i := 0; i < nodes; i++ {
		for j := 0; j < perNode; j++ {
			objs = append(objs, obj{i, channelID(t), randomBytes(t, 1024+j)})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(objs))
	for _, o := range objs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := clients[o.node].Persist(ctx, "channel_monitor", o.channel, o.data)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, nodes*perNode, h.count("objects"))
	for _, o := range objs {
		got, err := clients[o.node].Retrieve(ctx, "channel_monitor", o.channel)
		require.NoError(t, err)
		require.Equal(t, o.data, got)
	}
	for i, c := range clients {
		l, err := c.List(ctx, "")
		require.NoError(t, err)
		require.Len(t, l.ChannelMonitors, perNode, "node %d", i)
	}
}

// TestSeveralLiveChallenges: two devices of one node log in at once.
func TestSeveralLiveChallenges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	c1 := h.challenge(h.url, n)
	c2 := h.challenge(h.url, n)
	require.NotEqual(t, c1, c2)

	r2 := h.respond(h.url, n, c2).json(t)
	r1 := h.respond(h.url, n, c1).json(t)
	require.NotEqual(t, r1["bearer"], r2["bearer"])
	for _, tok := range []any{r1["bearer"], r2["bearer"]} {
		r := h.do(http.MethodGet, "/v1/list?network=regtest", map[string]string{"Authorization": tok.(string)}, nil)
		require.Equal(t, http.StatusOK, r.status)
	}
	require.Equal(t, 0, h.count("auth_challenges"), "used challenges are gone")
	require.Equal(t, 2, h.count("auth_sessions"))
}

func TestLiveChallengesAreCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	var cs []string
	for i := 0; i < 8; i++ {
		cs = append(cs, h.challenge(h.url, n))
	}
	require.Equal(t, 5, h.count("auth_challenges"))
	// The oldest were dropped; the newest still work.
	h.respond(h.url, n, cs[0]).requireError(t, http.StatusUnauthorized)
	h.respond(h.url, n, cs[7]).json(t)
}

// TestLiveChallengesAreCappedUnderConcurrency: 60 identical challenge
// requests at once leave at most five live challenges, each of which works.
func TestLiveChallengesAreCappedUnderConcurrency(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	body := n.challengeBody(h.clock.Now())
	const requests = 60
	start := make(chan struct{})
	statuses := make(chan int, requests)
	var wg sync.WaitGroup
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, err := http.NewRequest(http.MethodPost, h.url+"/v1/auth/challenge", bytes.NewReader(body))
			if err != nil {
				statuses <- -1
				return
			}
			req.Header.Set("Public-Key", n.pub)
			resp, err := h.http.Do(req)
			if err != nil {
				statuses <- -1
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		require.Equal(t, http.StatusOK, s)
	}
	require.Equal(t, 5, h.count("auth_challenges"), "exactly the cap is live")
	var live []string
	rows, err := h.pool.Query(context.Background(), `SELECT encode(challenge, 'hex') FROM auth_challenges`)
	require.NoError(t, err)
	for rows.Next() {
		var c string
		require.NoError(t, rows.Scan(&c))
		live = append(live, c)
	}
	require.NoError(t, rows.Err())
	for _, c := range live {
		h.respond(h.url, n, c).json(t)
	}
}

func TestChallengeIsSingleUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	c := h.challenge(h.url, n)
	h.respond(h.url, n, c).json(t)
	before := h.snapshot()
	// No live challenge left: 400, and nothing changes.
	h.respond(h.url, n, c).requireError(t, http.StatusBadRequest)
	require.Equal(t, before, h.snapshot())
	// With another challenge live, the old signature is simply wrong: 401.
	h.challenge(h.url, n)
	before = h.snapshot()
	h.respond(h.url, n, c).requireError(t, http.StatusUnauthorized)
	require.Equal(t, before, h.snapshot())
	require.Equal(t, 1, h.count("auth_sessions"))
}

// TestLoginDropsTheNodesExpiredSessions: a successful login clears its own
// node's expired sessions (housekeeping clears the rest); a refused one
// changes nothing.
func TestLoginDropsTheNodesExpiredSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := newNode(t), newNode(t)
	h.login(a)
	h.login(b)
	h.clock.Advance(6 * time.Minute) // both sessions expired
	used := h.challenge(h.url, a)
	h.respond(h.url, a, used).json(t)
	require.Equal(t, 2, h.count("auth_sessions"), "a's expired session is gone; b's waits for housekeeping")

	h.clock.Advance(6 * time.Minute)
	before := h.snapshot()
	h.respond(h.url, a, used).requireError(t, http.StatusBadRequest)
	require.Equal(t, before, h.snapshot(), "a refused login drops nothing")
}

func TestChallengeExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	c := h.challenge(h.url, n)
	h.clock.Advance(61 * time.Second)
	h.respond(h.url, n, c).requireError(t, http.StatusBadRequest)
	require.Equal(t, 0, h.count("auth_sessions"))
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	tok := h.login(n)
	auth := map[string]string{"Authorization": tok}
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/v1/list?network=regtest", auth, nil).status)
	h.clock.Advance(4*time.Minute + 50*time.Second)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/v1/list?network=regtest", auth, nil).status)
	h.clock.Advance(11 * time.Second)
	h.do(http.MethodGet, "/v1/list?network=regtest", auth, nil).requireError(t, http.StatusUnauthorized)
	h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=ping", auth, nil).requireError(t, http.StatusUnauthorized)
}

// TestRequestLog: every request ends in one log line with its id, route,
// status, sizes, tenant and a short prefix of its node, and never the token.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	body := []byte("logged")
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", body).status)
	tok := h.login(n)
	r := h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=ping", map[string]string{"Authorization": tok}, nil)
	require.Equal(t, http.StatusOK, r.status)

	var line map[string]any
	for _, l := range h.logs.lines(t) {
		if l["msg"] == "request" && l["request_id"] == r.header.Get("X-Request-Id") {
			line = l
		}
	}
	require.NotNil(t, line, "no request line for %s", r.header.Get("X-Request-Id"))
	require.Equal(t, "GET", line["method"])
	require.Equal(t, "/v1/retrieve", line["route"])
	require.Equal(t, float64(http.StatusOK), line["status"])
	require.Equal(t, float64(len(body)), line["bytes_out"])
	require.Equal(t, "default", line["tenant"])
	require.Equal(t, n.pub[:12], line["node"])
	require.Contains(t, line, "duration_ms")

	h.logs.mu.Lock()
	all := h.logs.buf.String()
	h.logs.mu.Unlock()
	require.NotContains(t, all, tok, "a bearer token in the log")
}

// TestRequestLogCountsTheBytesRead: a persist refused (413) for the
// Content-Length it declares logs the bytes the server read, not the
// declared length.
func TestRequestLogCountsTheBytesRead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.MaxBodyBytes = 1 << 10 })
	n := newNode(t)
	sent := randomBytes(t, 100)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	var req strings.Builder
	req.WriteString("POST /v1/persist?network=regtest&label=ping HTTP/1.1\r\nHost: x\r\nX-Request-Id: too-large-1\r\nContent-Length: 10000000\r\n")
	for k, v := range n.persistHeaders(sent) {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	_, err = conn.Write(append([]byte(req.String()), sent...))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	line := h.waitForRequestLog(t, "too-large-1")
	require.EqualValues(t, len(sent), line["bytes_in"], "the bytes read, not the 10,000,000 declared")

	body := []byte("logged")
	r := h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", n.persistHeaders(body), body)
	require.Equal(t, http.StatusOK, r.status)
	require.EqualValues(t, len(body), h.waitForRequestLog(t, r.header.Get("X-Request-Id"))["bytes_in"])
}

// TestCachedTokenExpires: a replica that holds a session in its cache (here
// for up to a minute) still refuses the token the moment the session expires.
func TestCachedTokenExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.CacheTTL = time.Minute })
	h.clock.Freeze() // the list half a second before expiry must not drift past it
	n := newNode(t)
	tok := h.login(n)
	auth := map[string]string{"Authorization": tok}
	h.clock.Advance(5*time.Minute - 500*time.Millisecond)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/v1/list?network=regtest", auth, nil).status)
	h.clock.Advance(time.Second)
	h.do(http.MethodGet, "/v1/list?network=regtest", auth, nil).requireError(t, http.StatusUnauthorized)
}

func TestTimestampWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	hdr := map[string]string{"Public-Key": n.pub}
	now := h.clock.Now()
	for _, off := range []time.Duration{-11 * time.Hour, 11 * time.Hour} {
		require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/auth/challenge", hdr, n.challengeBody(now.Add(off))).status)
		// iOS form: seconds with a fraction, as a string.
		ts := fmt.Sprintf("%d.%06d", now.Add(off).Unix(), now.Nanosecond()/1000)
		body := fmt.Sprintf(`{"timestamp":%q,"signature":%q}`, ts, n.sign(ts))
		require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/auth/challenge", hdr, []byte(body)).status)
	}
	before := h.snapshot()
	for _, off := range []time.Duration{-13 * time.Hour, 13 * time.Hour} {
		h.do(http.MethodPost, "/v1/auth/challenge", hdr, n.challengeBody(now.Add(off))).requireError(t, http.StatusUnauthorized)
		ts := strconv.FormatInt(now.Add(off).Unix(), 10) + ".5"
		body := fmt.Sprintf(`{"timestamp":%q,"signature":%q}`, ts, n.sign(ts))
		h.do(http.MethodPost, "/v1/auth/challenge", hdr, []byte(body)).requireError(t, http.StatusUnauthorized)
	}
	require.Equal(t, before, h.snapshot())
}

// TestReplicasShareState: two servers on one database serve one client
// interchangeably.
func TestReplicasShareState(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	second := h.startReplica()
	n := newNode(t)

	body := []byte("persisted at the second replica")
	require.Equal(t, http.StatusOK, h.doURL(second, http.MethodPost, "/v1/persist?network=testnet&label=ping", n.persistHeaders(body), body).status)

	c := h.challenge(h.url, n)           // challenge from the first
	r := h.respond(second, n, c).json(t) // answered at the second
	tok := map[string]string{"Authorization": r["bearer"].(string)}
	got := h.doURL(h.url, http.MethodGet, "/v1/retrieve?network=testnet&label=ping", tok, nil) // read at the first
	require.Equal(t, http.StatusOK, got.status)
	require.Equal(t, body, got.body)

	// A client alternating between replicas restores everything.
	ctx := context.Background()
	w1, w2 := h.clientFor(h.url, n.secret, client.AndroidTimestamps), h.clientFor(second, n.secret, client.AndroidTimestamps)
	mon := channelID(t)
	_, err := w1.Persist(ctx, "channel_monitor", mon, []byte("m"))
	require.NoError(t, err)
	b, err := w2.Restore(ctx)
	require.NoError(t, err)
	require.Equal(t, []byte("m"), b.ChannelFiles[mon+".bin"])
}

// TestStateSurvivesServerRestart: the server is stopped and a new one
// started on the same database (nothing kept in memory): what was
// acknowledged is there, the token issued before the restart still reads
// it, a challenge issued before it can still be answered, and versions go
// on from where they were.
func TestStateSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	body := []byte("before restart")
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=signet&label=channel_manager", n.persistHeaders(body), body).status)
	tok := map[string]string{"Authorization": h.login(n)}
	challenge := h.challenge(h.url, n)

	old := h.url
	require.NoError(t, h.app.Close())
	_, err := h.http.Get(old + "/healthz")
	require.Error(t, err, "the old server no longer answers")
	h.url = h.startReplica()

	r := h.do(http.MethodGet, "/v1/retrieve?network=signet&label=channel_manager", tok, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, body, r.body)
	require.Equal(t, http.StatusOK, h.respond(h.url, n, challenge).status, "the challenge issued before the restart")
	next := []byte("after restart")
	r = h.do(http.MethodPost, "/v1/persist?network=signet&label=channel_manager", n.persistHeaders(next), next)
	require.EqualValues(t, 2, r.json(t)["version"])
}
