package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/client"
	"ldkbackup/internal/config"
)

// persistRaw sends body as n with fresh headers and returns the response.
func (h *harness) persistRaw(n node, query string, body []byte) response {
	h.t.Helper()
	return h.do(http.MethodPost, "/v1/persist?"+query, n.persistHeaders(body), body)
}

func (h *harness) latestVersion(label string) int64 {
	h.t.Helper()
	var v int64
	require.NoError(h.t, h.pool.QueryRow(context.Background(), `SELECT latest_version FROM objects WHERE label = $1`, label).Scan(&v))
	return v
}

func TestPersistReplyCarriesTheVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	for want := 1; want <= 3; want++ {
		r := h.persistRaw(n, "network=regtest&label=channel_manager", randomBytes(t, 100)).json(t)
		require.Equal(t, true, r["success"])
		require.EqualValues(t, want, r["version"])
	}
}

// TestReplayIsRefused: an attacker who captured an old persist request
// sends it again (same body, same signed hash) with a fresh challenge.
func TestReplayIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	old := randomBytes(t, 512)
	captured := n.persistHeaders(old)
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=channel_monitor&channelId="+monitorID, captured, old).status)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_monitor&channelId="+monitorID, randomBytes(t, 512)).status)
	require.EqualValues(t, 2, h.latestVersion("channel_monitor"))

	replay := map[string]string{}
	for k, v := range captured {
		replay[k] = v
	}
	fresh := sha256.Sum256([]byte("a later challenge"))
	replay["Challenge"] = hex.EncodeToString(fresh[:])
	before := h.snapshot()
	msg := h.do(http.MethodPost, "/v1/persist?network=regtest&label=channel_monitor&channelId="+monitorID, replay, old).requireError(t, http.StatusConflict)
	require.Contains(t, msg, "replay")
	require.Equal(t, before, h.snapshot(), "the latest version is unchanged and nothing is stored")

	// Nor under another label or channel: the signed hash covers only bytes.
	for _, q := range []string{"network=regtest&label=channel_manager", "network=regtest&label=channel_monitor&channelId=" + otherMonitorID, "network=testnet&label=ping"} {
		h.do(http.MethodPost, "/v1/persist?"+q, replay, old).requireError(t, http.StatusConflict)
	}
	require.Equal(t, before, h.snapshot())
}

const (
	monitorID      = "1111111111111111111111111111111111111111111111111111111111111111"
	otherMonitorID = "2222222222222222222222222222222222222222222222222222222222222222"
)

// TestRetryIsIdempotent: the same bytes as the latest version (a retry whose
// first reply was lost) succeed without a new version.
func TestRetryIsIdempotent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	body := randomBytes(t, 300)
	first := h.persistRaw(n, "network=regtest&label=channel_manager", body).json(t)
	require.EqualValues(t, 1, first["version"])
	before := h.snapshot()
	hdr := n.persistHeaders(body)
	again := h.do(http.MethodPost, "/v1/persist?network=regtest&label=channel_manager", hdr, body).json(t)
	require.EqualValues(t, 1, again["version"])
	require.Equal(t, before, h.snapshot(), "no new version")

	// The reply is signed over the new challenge, so the app accepts it.
	c, err := client.New(client.Config{BaseURL: h.url, Network: "regtest", NodeSecret: n.secret, ServerPubKey: h.serverPub})
	require.NoError(t, err)
	res, err := c.PersistEncrypted(context.Background(), "channel_manager", "", body)
	require.NoError(t, err)
	require.EqualValues(t, 1, res.Version)
}

func TestConcurrentPersistsOfOneObjectNumberVersionsExactly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RetainVersions = 100 })
	n := newNode(t)
	const writers = 20
	versions := make(chan int64, writers)
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		body := randomBytes(t, 1000+i)
		go func() {
			defer wg.Done()
			r := h.persistRaw(n, "network=regtest&label=channel_monitor&channelId="+monitorID, body)
			if r.status != http.StatusOK {
				versions <- -int64(r.status)
				return
			}
			var out struct{ Version int64 }
			if json.Unmarshal(r.body, &out) != nil {
				versions <- -1
				return
			}
			versions <- out.Version
		}()
	}
	wg.Wait()
	close(versions)
	var got []int
	for v := range versions {
		got = append(got, int(v))
	}
	sort.Ints(got)
	want := make([]int, writers)
	for i := range want {
		want[i] = i + 1
	}
	require.Equal(t, want, got, "versions 1..20, each exactly once")

	var rows, distinct, max int
	require.NoError(t, h.pool.QueryRow(context.Background(),
		`SELECT count(*), count(DISTINCT version), max(version) FROM object_versions`).Scan(&rows, &distinct, &max))
	require.Equal(t, []int{writers, writers, writers}, []int{rows, distinct, max})
	require.EqualValues(t, writers, h.latestVersion("channel_monitor"))
}

func TestRetentionDropsOldBytesButStillRefusesTheirReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RetainVersions = 3 })
	n := newNode(t)
	var bodies [][]byte
	var headers []map[string]string
	for i := 0; i < 6; i++ {
		b := randomBytes(t, 200)
		hdr := n.persistHeaders(b)
		require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=channel_manager", hdr, b).status)
		bodies, headers = append(bodies, b), append(headers, hdr)
	}
	tok := map[string]string{"Authorization": h.login(n)}

	r := h.do(http.MethodGet, "/v1/versions?network=regtest&label=channel_manager", tok, nil)
	var list struct {
		Versions []struct {
			Version   int64     `json:"version"`
			Size      int64     `json:"size"`
			SHA256    string    `json:"sha256"`
			CreatedAt time.Time `json:"created_at"`
			Held      bool      `json:"held"`
		} `json:"versions"`
	}
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.NoError(t, json.Unmarshal(r.body, &list))
	require.Len(t, list.Versions, 3, "versions beyond retention are gone, not kept without their bytes")
	for i, v := range list.Versions {
		want := int64(6 - i)
		require.Equal(t, want, v.Version, "newest first")
		require.True(t, v.Held, "version %d", want)
		sum := sha256.Sum256(bodies[want-1])
		require.Equal(t, hex.EncodeToString(sum[:]), v.SHA256)
		require.EqualValues(t, 200, v.Size)
		require.False(t, v.CreatedAt.IsZero())
	}

	// Held versions read back; dropped ones are 404; the latest is the default.
	for v := 4; v <= 6; v++ {
		got := h.do(http.MethodGet, fmt.Sprintf("/v1/retrieve?network=regtest&label=channel_manager&version=%d", v), tok, nil)
		require.Equal(t, http.StatusOK, got.status)
		require.Equal(t, bodies[v-1], got.body)
	}
	h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=channel_manager&version=2", tok, nil).requireError(t, http.StatusNotFound)
	h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=channel_manager&version=7", tok, nil).requireError(t, http.StatusNotFound)
	require.Equal(t, bodies[5], h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=channel_manager", tok, nil).body)

	require.Equal(t, 3, h.count("object_versions"))
	require.Equal(t, 6, h.count("upload_hashes"), "each upload is remembered for the replay rule")

	// A replay of a version whose bytes are gone is still refused.
	before := h.snapshot()
	h.do(http.MethodPost, "/v1/persist?network=regtest&label=channel_manager", headers[0], bodies[0]).requireError(t, http.StatusConflict)
	require.Equal(t, before, h.snapshot())

	// Paging: limit and before.
	r = h.do(http.MethodGet, "/v1/versions?network=regtest&label=channel_manager&limit=2&before=5", tok, nil)
	require.NoError(t, json.Unmarshal(r.body, &list))
	require.Len(t, list.Versions, 1)
	require.EqualValues(t, 4, list.Versions[0].Version)
	r = h.do(http.MethodGet, "/v1/versions?network=regtest&label=channel_manager&limit=2", tok, nil)
	require.NoError(t, json.Unmarshal(r.body, &list))
	require.Len(t, list.Versions, 2)
	require.EqualValues(t, 6, list.Versions[0].Version)
	require.EqualValues(t, 5, list.Versions[1].Version)
}

func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	n, other := newNode(t), newNode(t)
	wallet := h.clientFor(h.url, n.secret, client.AndroidTimestamps)
	for i := 0; i < 3; i++ {
		_, err := wallet.Persist(ctx, "channel_manager", "", []byte(fmt.Sprint("state ", i)))
		require.NoError(t, err)
	}
	_, err := wallet.Persist(ctx, "channel_monitor", monitorID, []byte("monitor"))
	require.NoError(t, err)
	// Kept: the same node on another network, and another node.
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=testnet&label=ping", []byte("testnet")).status)
	require.Equal(t, http.StatusOK, h.persistRaw(other, "network=regtest&label=ping", []byte("other")).status)

	tok := map[string]string{"Authorization": h.login(n)}
	r := h.do(http.MethodDelete, "/v1/account?network=regtest", tok, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.JSONEq(t, `{"deleted":{"objects":2,"versions":4,"bytes":`+fmt.Sprint(3*(7+12+16)+(7+12+16))+`}}`, string(r.body))

	l, err := wallet.List(ctx, "all")
	require.NoError(t, err)
	require.Empty(t, l.List)
	require.Empty(t, l.ChannelMonitors)
	_, err = wallet.Retrieve(ctx, "channel_manager", "")
	require.ErrorIs(t, err, client.ErrNotFound)
	require.Equal(t, 2, h.count("objects"), "testnet and the other node's objects stay")

	var action, network string
	var detail []byte
	require.NoError(t, h.pool.QueryRow(ctx, `SELECT action, network, detail FROM audit_log`).Scan(&action, &network, &detail))
	require.Equal(t, "account_deleted", action)
	require.Equal(t, "regtest", network)
	require.JSONEq(t, `{"objects":2,"versions":4,"bytes":140}`, string(detail))

	// A captured upload of the deleted account still cannot be replayed.
	require.Positive(t, h.count("upload_hashes"))

	// Deleting again removes nothing and says so.
	require.JSONEq(t, `{"deleted":{"objects":0,"versions":0,"bytes":0}}`, string(h.do(http.MethodDelete, "/v1/account?network=regtest", tok, nil).body))
}

func TestVersionsBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := newNode(t), newNode(t)
	require.Equal(t, http.StatusOK, h.persistRaw(a, "network=regtest&label=channel_manager", []byte("a's bytes")).status)
	aTok, bTok := h.login(a), h.login(b)
	auth := func(tok string) map[string]string { return map[string]string{"Authorization": tok} }

	cases := []struct {
		name, method, path string
		header             map[string]string
		status             int
	}{
		{"version zero", "GET", "/v1/retrieve?network=regtest&label=channel_manager&version=0", auth(aTok), 400},
		{"negative version", "GET", "/v1/retrieve?network=regtest&label=channel_manager&version=-1", auth(aTok), 400},
		{"word version", "GET", "/v1/retrieve?network=regtest&label=channel_manager&version=latest", auth(aTok), 400},
		{"fraction version", "GET", "/v1/retrieve?network=regtest&label=channel_manager&version=1.5", auth(aTok), 400},
		{"plus version", "GET", "/v1/retrieve?network=regtest&label=channel_manager&version=%2B1", auth(aTok), 400},
		{"huge version", "GET", "/v1/retrieve?network=regtest&label=channel_manager&version=99999999999999999999", auth(aTok), 400},
		{"versions bad limit", "GET", "/v1/versions?network=regtest&label=channel_manager&limit=0", auth(aTok), 400},
		{"versions limit too large", "GET", "/v1/versions?network=regtest&label=channel_manager&limit=1001", auth(aTok), 400},
		{"versions bad before", "GET", "/v1/versions?network=regtest&label=channel_manager&before=x", auth(aTok), 400},
		{"versions unknown label", "GET", "/v1/versions?network=regtest&label=nope", auth(aTok), 400},
		{"versions without token", "GET", "/v1/versions?network=regtest&label=channel_manager", nil, 401},
		{"versions of another node", "GET", "/v1/versions?network=regtest&label=channel_manager", auth(bTok), 404},
		{"version of another node", "GET", "/v1/retrieve?network=regtest&label=channel_manager&version=1", auth(bTok), 404},
		{"delete without token", "DELETE", "/v1/account?network=regtest", nil, 401},
		{"delete with unknown token", "DELETE", "/v1/account?network=regtest", auth(randomHex(t)), 401},
		{"delete without network", "DELETE", "/v1/account", auth(aTok), 400},
		{"delete unknown network", "DELETE", "/v1/account?network=mainnet", auth(aTok), 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			h.do(tc.method, tc.path, tc.header, nil).requireError(t, tc.status)
			require.Equal(t, before, h.snapshot())
		})
	}

	t.Run("delete with another node's token deletes only that node", func(t *testing.T) {
		r := h.do(http.MethodDelete, "/v1/account?network=regtest", auth(bTok), nil)
		require.JSONEq(t, `{"deleted":{"objects":0,"versions":0,"bytes":0}}`, string(r.body))
		require.Equal(t, 1, h.count("objects"))
	})

	t.Run("delete with an expired token", func(t *testing.T) {
		objects := h.count("objects")
		h.clock.Advance(6 * time.Minute)
		h.do(http.MethodDelete, "/v1/account?network=regtest", auth(aTok), nil).requireError(t, http.StatusUnauthorized)
		require.Equal(t, objects, h.count("objects"))
	})
}

func randomHex(t *testing.T) string { return hex.EncodeToString(randomBytes(t, 32)) }
