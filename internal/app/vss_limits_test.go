package app_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/config"
	"ldkbackup/internal/vssclient"
	"ldkbackup/internal/vsspb"
)

// vssUserFrom is a user whose requests come from addr (through the trusted
// proxy's X-Forwarded-For).
func (h *harness) vssUserFrom(token, addr string) *vssUser {
	u := h.vssUserNamed("/vss", token)
	u.c = vssclient.New(h.url+"/vss", h.http, vssclient.Fixed(http.Header{"Authorization": {"Test " + token}, "X-Forwarded-For": {addr}}))
	return u
}

func requireStatus(t *testing.T, err error, status int, code vsspb.ErrorCode) *vssclient.Error {
	t.Helper()
	var e *vssclient.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, status, e.Status, "%v", err)
	require.Equal(t, code, e.Code, "%v", err)
	return e
}

// TestVSSRateLimits: VSS requests are held to v1's limits. A user's writes
// over its allowance are paced (they wait for their turn, then are
// stored) up to PACE_MAX_WAIT, then refused; its reads over it are refused
// at once; requests that fail to prove a user count against the address
// and are refused before their proof once it is over its limit; new users
// count against the address as new nodes do. Refusals are recorded.
func TestVSSRateLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, behindProxy, func(c *config.Config) {
		c.RatePerAddressPerMinute, c.RatePerNodePerMinute, c.NewNodesPerAddressPerHour = 3, 3, 1
		c.PaceMaxWait = 30 * time.Second
	})
	h.clock.Freeze()
	ctx := context.Background()

	// Pacing: 3 a minute is a turn every 20 s.
	u := h.vssUserFrom("paced", "198.51.100.1")
	for i := range 3 {
		require.NoError(t, u.put(nil, kv("k"+strconv.Itoa(i), "v", 0)))
	}
	waiting := make(chan error, 1)
	go func() { waiting <- u.put(nil, kv("k3", "v", 0)) }()
	waitFor(t, "the fourth write to wait for its turn", func() bool { return h.clock.Sleepers() == 1 })
	before := h.snapshot()
	// 40 s away: past PACE_MAX_WAIT, refused as a retryable error.
	requireStatus(t, u.put(nil, kv("k4", "v", 0)), http.StatusTooManyRequests, vsspb.ErrorCode_INTERNAL_SERVER_EXCEPTION)
	require.Equal(t, before, h.snapshot())
	h.clock.Advance(20 * time.Second)
	require.NoError(t, <-waiting)
	require.Equal(t, 4, h.count("vss_objects"), "the paced write is stored")
	// Reads are counted too, and refused, not paced.
	_, err := u.get("k0")
	requireStatus(t, err, http.StatusTooManyRequests, vsspb.ErrorCode_INTERNAL_SERVER_EXCEPTION)
	_, err = u.c.ListKeyVersions(ctx, &vsspb.ListKeyVersionsRequest{StoreId: u.store})
	requireStatus(t, err, http.StatusTooManyRequests, vsspb.ErrorCode_INTERNAL_SERVER_EXCEPTION)

	// Unproven requests count against the address: two failed
	// authorizations and a body of the wrong type, then even a good
	// request is refused before its authorization is checked.
	from := func(addr string, hdr map[string]string) map[string]string {
		out := map[string]string{"X-Forwarded-For": addr, "Content-Type": "application/octet-stream"}
		for k, v := range hdr {
			out[k] = v
		}
		return out
	}
	get := marshal(t, &vsspb.GetObjectRequest{Key: "k"})
	h.do("POST", "/vss/getObject", from("198.51.100.2", map[string]string{"Authorization": "Bogus"}), get).requireVSSError(t, 401, vsspb.ErrorCode_AUTH_EXCEPTION)
	h.do("POST", "/vss/getObject", from("198.51.100.2", nil), get).requireVSSError(t, 401, vsspb.ErrorCode_AUTH_EXCEPTION)
	h.do("POST", "/vss/getObject", from("198.51.100.2", map[string]string{"Content-Type": "text/plain", "Authorization": "Test x"}), get).requireVSSError(t, 415, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION)
	r := h.do("POST", "/vss/getObject", from("198.51.100.2", map[string]string{"Authorization": "Test fresh"}), get)
	r.requireVSSError(t, 429, vsspb.ErrorCode_INTERNAL_SERVER_EXCEPTION)
	require.NotEmpty(t, r.header.Get("Retry-After"))

	// A proven user's malformed requests are its own mistake, not a probe:
	// they do not use up the address.
	for range 5 {
		h.do("POST", "/vss/getObject", from("198.51.100.3", map[string]string{"Authorization": "Test honest"}), []byte{0xff}).requireVSSError(t, 400, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION)
	}
	honest := h.vssUserFrom("honest", "198.51.100.3")
	honest.requireNoKey("k")

	// New users of one address: one an hour, shared with v1's new nodes.
	require.NoError(t, h.vssUserFrom("first", "198.51.100.4").put(nil, kv("k", "v", 0)))
	before = h.snapshot()
	requireStatus(t, h.vssUserFrom("second", "198.51.100.4").put(nil, kv("k", "v", 0)), http.StatusTooManyRequests, vsspb.ErrorCode_INTERNAL_SERVER_EXCEPTION)
	require.Equal(t, before, h.snapshot())

	rows, err := h.pool.Query(ctx, `SELECT user_token, kind, count FROM vss_refusals ORDER BY 1, 2`)
	require.NoError(t, err)
	got := map[string]int{}
	for rows.Next() {
		var token, kind string
		var n int
		require.NoError(t, rows.Scan(&token, &kind, &n))
		got[token+" "+kind] = n
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]int{"paced rate_node": 3, "second new_nodes_per_address": 1}, got)

	require.NoError(t, h.app.FlushActivity(ctx))
	var paced int
	require.NoError(t, h.pool.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM activity_daily WHERE kind = 'paced'`).Scan(&paced))
	require.Equal(t, 1, paced)
}
