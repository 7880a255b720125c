package app_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/config"
)

// TestPersistBadInput sends every malformed persist and checks the status,
// the error body, and that nothing in the database changed.
func TestPersistBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.MaxBodyBytes = 64 << 10 })
	n, other := newNode(t), newNode(t)
	body := []byte("ciphertext")
	mon := channelID(t)

	// One good persist, so "nothing changed" also covers an existing row.
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", n.persistHeaders(body), body).status)

	with := func(mut func(map[string]string)) map[string]string {
		hdr := n.persistHeaders(body)
		mut(hdr)
		return hdr
	}
	cases := []struct {
		name   string
		query  string
		header map[string]string
		body   []byte
		status int
	}{
		{"missing Public-Key", "network=regtest&label=ping", with(func(m map[string]string) { delete(m, "Public-Key") }), body, 400},
		{"short Public-Key", "network=regtest&label=ping", with(func(m map[string]string) { m["Public-Key"] = n.pub[:64] }), body, 400},
		{"non-hex Public-Key", "network=regtest&label=ping", with(func(m map[string]string) { m["Public-Key"] = "zz" + n.pub[2:] }), body, 400},
		{"uncompressed prefix", "network=regtest&label=ping", with(func(m map[string]string) { m["Public-Key"] = "04" + n.pub[2:] }), body, 400},
		{"missing Signed-Hash", "network=regtest&label=ping", with(func(m map[string]string) { delete(m, "Signed-Hash") }), body, 400},
		{"missing Challenge", "network=regtest&label=ping", with(func(m map[string]string) { delete(m, "Challenge") }), body, 400},
		{"short Challenge", "network=regtest&label=ping", with(func(m map[string]string) { m["Challenge"] = "abcd" }), body, 400},
		{"non-hex Challenge", "network=regtest&label=ping", with(func(m map[string]string) { m["Challenge"] = strings.Repeat("g", 64) }), body, 400},
		{"garbage Signed-Hash", "network=regtest&label=ping", with(func(m map[string]string) { m["Signed-Hash"] = "not zbase32!" }), body, 401},
		{"signature by another key", "network=regtest&label=ping", with(func(m map[string]string) { m["Signed-Hash"] = other.persistHeaders(body)["Signed-Hash"] }), body, 401},
		{"claims another node's key", "network=regtest&label=ping", with(func(m map[string]string) { m["Public-Key"] = other.pub }), body, 401},
		{"hash of other bytes", "network=regtest&label=ping", n.persistHeaders([]byte("other bytes")), body, 401},
		{"missing network", "label=ping", n.persistHeaders(body), body, 400},
		{"unknown network", "network=mainnet&label=ping", n.persistHeaders(body), body, 400},
		{"missing label", "network=regtest", n.persistHeaders(body), body, 400},
		{"unknown label", "network=regtest&label=wallet", n.persistHeaders(body), body, 400},
		{"path in label", "network=regtest&label=..%2Fping", n.persistHeaders(body), body, 400},
		{"monitor without channelId", "network=regtest&label=channel_monitor", n.persistHeaders(body), body, 400},
		{"monitor with channelId undefined", "network=regtest&label=channel_monitor&channelId=undefined", n.persistHeaders(body), body, 400},
		{"monitor with path channelId", "network=regtest&label=channel_monitor&channelId=..%2F..%2F" + mon[6:], n.persistHeaders(body), body, 400},
		{"monitor with short channelId", "network=regtest&label=channel_monitor&channelId=" + mon[:62], n.persistHeaders(body), body, 400},
		{"empty body", "network=regtest&label=ping", n.persistHeaders(nil), nil, 400},
		{"empty body, no Content-Type", "network=regtest&label=ping", with(func(m map[string]string) { delete(m, "Content-Type") }), []byte{}, 400},
		{"wrong Content-Type", "network=regtest&label=ping", with(func(m map[string]string) { m["Content-Type"] = "multipart/form-data" }), body, 415},
		{"body over the limit", "network=regtest&label=ping", n.persistHeaders(make([]byte, 64<<10+1)), make([]byte, 64<<10+1), 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			h.do(http.MethodPost, "/v1/persist?"+tc.query, tc.header, tc.body).requireError(t, tc.status)
			require.Equal(t, before, h.snapshot(), "a refused persist must change nothing")
		})
	}

	t.Run("body without a length over the limit", func(t *testing.T) {
		before := h.snapshot()
		big := make([]byte, 64<<10+1)
		req, err := http.NewRequest(http.MethodPost, h.url+"/v1/persist?network=regtest&label=ping", io.MultiReader(bytes.NewReader(big)))
		require.NoError(t, err)
		req.ContentLength = -1 // chunked
		for k, v := range n.persistHeaders(big) {
			req.Header.Set(k, v)
		}
		resp, err := h.http.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		response{status: resp.StatusCode, body: b}.requireError(t, http.StatusRequestEntityTooLarge)
		require.Equal(t, before, h.snapshot())
	})

	t.Run("body without a length under the limit is accepted", func(t *testing.T) {
		small := []byte("chunked but small")
		req, err := http.NewRequest(http.MethodPost, h.url+"/v1/persist?network=regtest&label=peers", io.MultiReader(bytes.NewReader(small)))
		require.NoError(t, err)
		req.ContentLength = -1
		for k, v := range n.persistHeaders(small) {
			req.Header.Set(k, v)
		}
		resp, err := h.http.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

func TestAuthBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n, other := newNode(t), newNode(t)
	now := h.clock.Now()
	ms := fmt.Sprint(now.UnixMilli())
	good := n.challengeBody(now)
	hdr := map[string]string{"Public-Key": n.pub, "Content-Type": "application/json"}
	withKey := func(k string) map[string]string {
		return map[string]string{"Public-Key": k, "Content-Type": "application/json"}
	}

	challengeCases := []struct {
		name   string
		header map[string]string
		body   string
		status int
	}{
		{"no body", hdr, "", 400},
		{"not JSON", hdr, "timestamp=1", 400},
		{"JSON array", hdr, `[1,2]`, 400},
		{"trailing garbage", hdr, string(good) + "x", 400},
		{"oversized JSON", hdr, `{"timestamp":` + ms + `,"signature":"` + strings.Repeat("y", 20<<10) + `"}`, 413},
		{"missing Public-Key", map[string]string{"Content-Type": "application/json"}, string(good), 400},
		{"malformed Public-Key", withKey("xyz"), string(good), 400},
		{"missing timestamp", hdr, fmt.Sprintf(`{"signature":%q}`, n.sign(ms)), 400},
		{"missing signature", hdr, `{"timestamp":` + ms + `}`, 400},
		{"signature not a string", hdr, `{"timestamp":` + ms + `,"signature":5}`, 400},
		{"float timestamp", hdr, fmt.Sprintf(`{"timestamp":%s.5,"signature":%q}`, ms, n.sign(ms+".5")), 400},
		{"exponent timestamp", hdr, fmt.Sprintf(`{"timestamp":1.7e12,"signature":%q}`, n.sign("1.7e12")), 400},
		{"NaN timestamp", hdr, fmt.Sprintf(`{"timestamp":"NaN","signature":%q}`, n.sign("NaN")), 400},
		{"huge number", hdr, fmt.Sprintf(`{"timestamp":%s,"signature":%q}`, strings.Repeat("9", 400), n.sign(strings.Repeat("9", 400))), 400},
		{"signature by another key", hdr, string(other.challengeBody(now)), 401},
		{"signature over another timestamp", hdr, fmt.Sprintf(`{"timestamp":%s,"signature":%q}`, ms, n.sign("1")), 401},
		{"signed as number, sent as string", hdr, fmt.Sprintf(`{"timestamp":"%s","signature":%q}`, fmt.Sprint(now.Unix()), n.sign(fmt.Sprint(now.Unix())+"0")), 401},
		{"garbage signature", hdr, `{"timestamp":` + ms + `,"signature":"!!!"}`, 401},
		{"stale timestamp", hdr, string(n.challengeBody(now.Add(-24 * time.Hour))), 401},
		// encoding/json matches keys case-insensitively: the second key
		// would win, so the first must not pass unnoticed.
		{"timestamp twice, in two cases", hdr, fmt.Sprintf(`{"timestamp":1,"Timestamp":%s,"signature":%q}`, ms, n.sign(ms)), 400},
		{"signature twice, one with a long s", hdr, fmt.Sprintf(`{"timestamp":%s,"signature":"x","\u017fignature":%q}`, ms, n.sign(ms)), 400},
	}
	for _, tc := range challengeCases {
		t.Run("challenge/"+tc.name, func(t *testing.T) {
			before := h.snapshot()
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			h.do(http.MethodPost, "/v1/auth/challenge", tc.header, body).requireError(t, tc.status)
			require.Equal(t, before, h.snapshot())
		})
	}

	c := h.challenge(h.url, n)
	// Another challenge: c with its last hex digit changed (appending a fixed
	// digit would equal c once in 16 runs).
	otherChallenge := c[:63] + map[bool]string{true: "1", false: "0"}[c[63] == '0']
	responseCases := []struct {
		name   string
		header map[string]string
		body   string
		status int
	}{
		{"no body", hdr, "", 400},
		{"not JSON", hdr, "{", 400},
		{"missing signature", hdr, `{}`, 400},
		{"missing Public-Key", map[string]string{}, fmt.Sprintf(`{"signature":%q}`, n.sign(c)), 400},
		{"no live challenge for that key", withKey(other.pub), fmt.Sprintf(`{"signature":%q}`, other.sign(c)), 400},
		{"signature by another key", hdr, fmt.Sprintf(`{"signature":%q}`, other.sign(c)), 401},
		{"signature over something else", hdr, fmt.Sprintf(`{"signature":%q}`, n.sign(otherChallenge)), 401},
		{"garbage signature", hdr, `{"signature":"ybndrfg8"}`, 401},
		{"signature twice, in two cases", hdr, fmt.Sprintf(`{"signature":"x","SIGNATURE":%q}`, n.sign(c)), 400},
	}
	for _, tc := range responseCases {
		t.Run("response/"+tc.name, func(t *testing.T) {
			before := h.snapshot()
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			h.do(http.MethodPost, "/v1/auth/response", tc.header, body).requireError(t, tc.status)
			require.Equal(t, before, h.snapshot())
		})
	}
	// After all that the challenge is still live and works once.
	h.respond(h.url, n, c).json(t)
}

func TestReadBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n, other := newNode(t), newNode(t)
	body := []byte("a's bytes")
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/persist?network=regtest&label=ping", n.persistHeaders(body), body).status)
	tok, otherTok := h.login(n), h.login(other)
	auth := func(tok string) map[string]string { return map[string]string{"Authorization": tok} }
	mon := channelID(t)

	cases := []struct {
		name   string
		path   string
		header map[string]string
		status int
	}{
		{"list without token", "/v1/list?network=regtest", nil, 401},
		{"retrieve without token", "/v1/retrieve?network=regtest&label=ping", nil, 401},
		{"unknown token", "/v1/list?network=regtest", auth(strings.Repeat("ab", 32)), 401},
		{"malformed token", "/v1/list?network=regtest", auth("undefined"), 401},
		{"bearer with nothing", "/v1/list?network=regtest", auth("Bearer "), 401},
		{"list missing network", "/v1/list", auth(tok), 400},
		{"list unknown network", "/v1/list?network=liquid", auth(tok), 400},
		{"list unknown fileGroup", "/v1/list?network=regtest&fileGroup=everything", auth(tok), 400},
		{"retrieve unknown label", "/v1/retrieve?network=regtest&label=secrets", auth(tok), 400},
		{"retrieve monitor without channelId", "/v1/retrieve?network=regtest&label=channel_monitor", auth(tok), 400},
		{"retrieve monitor with bad channelId", "/v1/retrieve?network=regtest&label=channel_monitor&channelId=../" + mon[3:], auth(tok), 400},
		{"retrieve missing object", "/v1/retrieve?network=regtest&label=channel_monitor&channelId=" + mon, auth(tok), 404},
		{"other node's token reads only that node", "/v1/retrieve?network=regtest&label=ping", auth(otherTok), 404},
		{"unknown path", "/v1/backups", nil, 404},
		{"wrong method", "/v1/persist?network=regtest&label=ping", auth(tok), 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			h.do(http.MethodGet, tc.path, tc.header, nil).requireError(t, tc.status)
			require.Equal(t, before, h.snapshot())
		})
	}
	r := h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=ping", auth(tok), nil)
	require.Equal(t, body, r.body, "the owner still reads its bytes")
}

// TestMalformedPersistIsAnsweredBeforeItsBody: a persist whose headers or
// query are wrong is refused before its body is read. A client that declares
// 4 MiB and never sends a byte of them still gets its answer.
func TestMalformedPersistIsAnsweredBeforeItsBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	before := h.snapshot()
	cases := []struct {
		name, query, header, value string
		status                     int
		message                    string
	}{
		{"bad Public-Key", "network=regtest&label=ping", "Public-Key", "zz" + n.pub[2:], 400, "Public-Key"},
		{"unknown network", "network=mainnet&label=ping", "", "", 400, "network"},
		{"monitor without channelId", "network=regtest&label=channel_monitor", "", "", 400, "channelId"},
		{"missing Signed-Hash", "network=regtest&label=ping", "Signed-Hash", "", 400, "Signed-Hash"},
		{"bad Challenge", "network=regtest&label=ping", "Challenge", "abcd", 400, "Challenge"},
		{"wrong Content-Type", "network=regtest&label=ping", "Content-Type", "text/plain", 415, "Content-Type"},
	}
	t.Run("group", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				hdr := n.persistHeaders([]byte("never sent"))
				hdr["Content-Length"] = fmt.Sprint(4 << 20)
				if tc.header != "" {
					hdr[tc.header] = tc.value
					if tc.value == "" {
						delete(hdr, tc.header)
					}
				}
				conn, rd := h.sendHead(http.MethodPost, "/v1/persist?"+tc.query, hdr)
				// Only a guard: a server that waits for the body fails the
				// test here instead of hanging it until its READ_TIMEOUT.
				require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
				resp, err := http.ReadResponse(rd, nil)
				require.NoError(t, err, "the answer must come without the body")
				b, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				resp.Body.Close()
				msg := response{status: resp.StatusCode, header: resp.Header, body: b}.requireError(t, tc.status)
				require.Contains(t, msg, tc.message)
			})
		}
	})
	require.Equal(t, before, h.snapshot(), "a refused persist stores nothing")
}
