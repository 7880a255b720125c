package app_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
	"google.golang.org/protobuf/proto"

	"ldkbackup/internal/config"
	"ldkbackup/internal/vsspb"
)

// FuzzHTTPHandler sends arbitrary requests to the server's whole handler
// over a real database (in process, so the fuzzer runs fast): whatever
// arrives, the answer is never a 5xx (there is no database fault here).
func FuzzHTTPHandler(f *testing.F) {
	// One client address sends everything: a high allowance keeps the
	// fuzzer exploring past the per-address limit (which still runs).
	h := newHarness(f, func(c *config.Config) { c.RatePerAddressPerMinute = 1 << 30 })
	n := newNode(f)
	body := []byte("fuzz seed body")
	var hdr strings.Builder
	for k, v := range n.persistHeaders(body) {
		hdr.WriteString(k + ": " + v + "\n")
	}
	f.Add(uint8(1), "/v1/persist?network=regtest&label=ping", hdr.String(), body)
	f.Add(uint8(1), "/v1/auth/challenge", "Public-Key: "+n.pub+"\nContent-Type: application/json\n", n.challengeBody(h.clock.Now()))
	f.Add(uint8(0), "/v1/list?network=regtest&fileGroup=all", "Authorization: Bearer "+strings.Repeat("ab", 32)+"\n", []byte(nil))
	f.Add(uint8(0), "/t/acme/v1/retrieve?network=regtest&label=channel_monitor&channelId=zz", "", []byte(nil))
	f.Add(uint8(2), "/v1/account?network=bitcoin", "Authorization: x\n", []byte(nil))
	f.Add(uint8(1), "/v1/auth/response", "Content-Type: application/json\n", []byte(`{"signature":[[[[{}]]]]}`))
	f.Add(uint8(4), "/t/../v1/status?%zz", "X-Forwarded-For: ::1\n", []byte{0, 1, 2})
	vssHdr := "Authorization: Test fuzz\nContent-Type: application/octet-stream\n"
	f.Add(uint8(1), "/vss/putObjects", vssHdr, marshal(f, &vsspb.PutObjectRequest{StoreId: "s", GlobalVersion: i64(0),
		TransactionItems: items(kv("k", "v", 0)), DeleteItems: items(kv("d", "", -1))}))
	f.Add(uint8(1), "/vss/getObject", vssHdr, marshal(f, &vsspb.GetObjectRequest{StoreId: "s", Key: "k"}))
	f.Add(uint8(1), "/vss/listKeyVersions", vssHdr, marshal(f, &vsspb.ListKeyVersionsRequest{StoreId: "s", KeyPrefix: str("%_"), PageSize: i32(3), PageToken: str("12")}))
	f.Add(uint8(1), "/t/acme/vss/deleteObject", vssHdr, marshal(f, &vsspb.DeleteObjectRequest{StoreId: "s", KeyValue: kv("k", "", 1)}))
	f.Add(uint8(0), "/vss/nope", "", []byte{0x0a})

	handler := h.app.Handler()
	methods := []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut, http.MethodHead, http.MethodOptions}
	f.Fuzz(func(t *testing.T, method uint8, path, headers string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(methods[int(method)%len(methods)], "http://backup.example"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.RemoteAddr = "192.0.2.10:4242"
		for _, line := range strings.Split(headers, "\n") {
			k, v, ok := strings.Cut(line, ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) || strings.EqualFold(k, "Host") || strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Transfer-Encoding") {
				continue
			}
			req.Header.Add(k, v)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q -> %d %s", req.Method, path, req.Header, rec.Code, rec.Body.Bytes())
		}
		// Under a VSS prefix every answer speaks VSS: its version header, and
		// an ErrorResponse for a refusal.
		if underVSS(req.URL.Path) {
			if got := rec.Header().Get("vss-protocol-version"); got != "0" {
				t.Fatalf("%s %s -> %d without vss-protocol-version", req.Method, path, rec.Code)
			}
			var e vsspb.ErrorResponse
			if rec.Code != http.StatusOK && (proto.Unmarshal(rec.Body.Bytes(), &e) != nil || e.ErrorCode == vsspb.ErrorCode_UNKNOWN) {
				t.Fatalf("%s %s -> %d with a body that is no ErrorResponse: %q", req.Method, path, rec.Code, rec.Body.Bytes())
			}
		}
	})
}

// underVSS says whether path lies under a VSS prefix: /vss or /t/SLUG/vss.
func underVSS(path string) bool {
	if path == "/vss" || strings.HasPrefix(path, "/vss/") {
		return true
	}
	parts := strings.SplitN(path, "/", 5)
	return len(parts) >= 4 && parts[1] == "t" && parts[3] == "vss"
}
