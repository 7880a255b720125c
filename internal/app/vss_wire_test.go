package app_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"ldkbackup/internal/config"
	"ldkbackup/internal/vssclient"
	"ldkbackup/internal/vsspb"
)

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

// TestVSSWire: every answer under a VSS path carries the protocol version,
// successes and refusals alike, and every refusal is a decodable
// ErrorResponse with the reference's code, also where the reference answers
// in plain text (unknown paths, unparsable and oversized bodies).
func TestVSSWire(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.MaxBodyBytes = 64 << 10 })
	h.addTenant("acme")
	u := h.vssUser("/vss")
	require.NoError(t, u.put(nil, kv("k", "v", 0)))

	// Successes: protobuf bodies the reference's types decode.
	for _, path := range []string{"/putObjects", "/getObject", "/listKeyVersions", "/deleteObject"} {
		var body []byte
		switch path {
		case "/getObject":
			body = marshal(t, &vsspb.GetObjectRequest{StoreId: u.store, Key: "k2"})
		case "/listKeyVersions":
			body = marshal(t, &vsspb.ListKeyVersionsRequest{StoreId: u.store})
		case "/putObjects":
			body = marshal(t, &vsspb.PutObjectRequest{StoreId: u.store, TransactionItems: items(kv("k2", "v", -1))})
		case "/deleteObject":
			body = marshal(t, &vsspb.DeleteObjectRequest{StoreId: u.store, KeyValue: kv("k2", "", -1)})
		}
		for _, prefix := range []string{"/vss", "/t/acme/vss"} {
			r := u.raw(prefix+path, nil, body)
			require.Equal(t, http.StatusOK, r.status, "%s%s: %q", prefix, path, r.body)
			require.Equal(t, "0", r.header.Get("vss-protocol-version"), path)
			require.Equal(t, "application/octet-stream", r.header.Get("Content-Type"), path)
		}
	}
	r := u.raw("/vss/getObject", nil, marshal(t, &vsspb.GetObjectRequest{StoreId: u.store, Key: "k"}))
	var got vsspb.GetObjectResponse
	require.NoError(t, proto.Unmarshal(r.body, &got))
	require.True(t, proto.Equal(&vsspb.GetObjectResponse{Value: kv("k", "v", 1)}, &got), "%v", &got)
	require.Equal(t, marshal(t, &got), r.body, "the streamed reply is the bytes proto.Marshal writes")

	getBody := marshal(t, &vsspb.GetObjectRequest{StoreId: u.store, Key: "k"})
	for _, c := range []struct {
		name   string
		method string
		path   string
		header map[string]string
		body   []byte
		status int
		code   vsspb.ErrorCode
	}{
		{"missing key", "POST", "/vss/getObject", nil, marshal(t, &vsspb.GetObjectRequest{StoreId: u.store, Key: "nope"}), 404, vsspb.ErrorCode_NO_SUCH_KEY_EXCEPTION},
		{"conflict", "POST", "/vss/putObjects", nil, marshal(t, &vsspb.PutObjectRequest{StoreId: u.store, TransactionItems: items(kv("k", "v", 0))}), 409, vsspb.ErrorCode_CONFLICT_EXCEPTION},
		{"no authorization", "POST", "/vss/getObject", map[string]string{"Authorization": ""}, getBody, 401, vsspb.ErrorCode_AUTH_EXCEPTION},
		{"unknown path", "POST", "/vss/nope", nil, getBody, 400, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"bare prefix", "POST", "/vss", nil, getBody, 400, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"trailing slash", "POST", "/vss/getObject/", nil, getBody, 400, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"unknown path of a tenant", "POST", "/t/acme/vss/nope", nil, getBody, 400, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"wrong method", "GET", "/vss/getObject", nil, nil, 405, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"wrong method of a tenant", "PUT", "/t/acme/vss/putObjects", nil, getBody, 405, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"unknown tenant", "POST", "/t/nosuch/vss/getObject", nil, getBody, 404, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"malformed tenant slug", "POST", "/t/ACME/vss/getObject", nil, getBody, 404, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"unparsable body", "POST", "/vss/getObject", nil, []byte{0xff, 0xff, 0xff}, 400, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"JSON body", "POST", "/vss/getObject", map[string]string{"Content-Type": "application/json"}, []byte(`{}`), 415, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"oversized body", "POST", "/vss/putObjects", nil, bytes.Repeat([]byte{0}, 64<<10+1), 413, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION},
	} {
		hdr := map[string]string{"Authorization": "Test " + u.token, "Content-Type": "application/octet-stream"}
		for k, v := range c.header {
			hdr[k] = v
		}
		r := h.do(c.method, c.path, hdr, c.body)
		msg := r.requireVSSError(t, c.status, c.code)
		t.Logf("%s: %d %s", c.name, r.status, msg)
	}
	// v1 paths still answer JSON, without the VSS header.
	r = h.do("GET", "/v1/nope", nil, nil)
	r.requireError(t, http.StatusNotFound)
	require.Empty(t, r.header.Get("vss-protocol-version"))

	// A client that checks the header (as vss-client does) works end to end.
	_, err := u.c.GetObject(context.Background(), &vsspb.GetObjectRequest{StoreId: u.store, Key: "k"})
	require.NoError(t, err)

	// Metrics name the protocol, tenant and operation, and count VSS events.
	m := h.metrics()
	for _, want := range []string{
		`ldkbackup_http_requests_total{protocol="vss",route="/putObjects",status="200",tenant="default"}`,
		`ldkbackup_http_requests_total{protocol="vss",route="/getObject",status="200",tenant="acme"}`,
		`ldkbackup_http_requests_total{protocol="vss",route="/getObject",status="404",tenant="default"}`,
		`ldkbackup_http_requests_total{protocol="vss",route="/deleteObject",status="200",tenant="default"}`,
		`ldkbackup_http_requests_total{protocol="vss",route="/listKeyVersions",status="200",tenant="acme"}`,
		`ldkbackup_events_total{kind="vss_put",protocol="vss",tenant="default"} 2`,
		`ldkbackup_events_total{kind="vss_get",protocol="vss",tenant="acme"} 1`,
		`ldkbackup_events_total{kind="vss_delete",protocol="vss",tenant="default"} 1`,
		`ldkbackup_events_total{kind="vss_list",protocol="vss",tenant="default"} 1`,
		`ldkbackup_events_total{kind="signature_failure",protocol="vss",tenant="default"} 1`,
	} {
		require.True(t, strings.Contains(m, want), "metrics lack %s", want)
	}
}

// TestVSSBadInput: every malformed request gets a clear 4xx ErrorResponse
// and changes nothing stored.
func TestVSSBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.MaxBodyBytes = 64 << 10 })
	u := h.vssUser("/vss")
	require.NoError(t, u.put(i64(0), kv("k", "v", 0), kv("k2", "v2", 0)))
	before := h.snapshot()

	long := func(n int) string { return strings.Repeat("é", n) } // characters, not bytes
	tooMany := make([]*vsspb.KeyValue, 1001)
	for i := range tooMany {
		tooMany[i] = kv(fmt.Sprint("n", i), "v", 0)
	}
	put := func(r *vsspb.PutObjectRequest) []byte { r.StoreId = u.store; return marshal(t, r) }
	for _, c := range []struct {
		name string
		path string
		body []byte
	}{
		{"not protobuf", "/vss/putObjects", []byte("hello, world")},
		{"truncated protobuf", "/vss/putObjects", put(&vsspb.PutObjectRequest{TransactionItems: items(kv("n", "value", 0))})[:10]},
		{"key not UTF-8", "/vss/putObjects", []byte{0x1a, 0x05, 0x0a, 0x03, 0xff, 0xfe, 0xfd}},
		{"1001 items", "/vss/putObjects", put(&vsspb.PutObjectRequest{TransactionItems: tooMany})},
		{"1001 items, puts and deletes", "/vss/putObjects", put(&vsspb.PutObjectRequest{TransactionItems: tooMany[:500], DeleteItems: tooMany[500:]})},
		{"key of 601 characters", "/vss/putObjects", put(&vsspb.PutObjectRequest{TransactionItems: items(kv(long(601), "v", 0))})},
		{"store id of 121 characters", "/vss/putObjects", marshal(t, &vsspb.PutObjectRequest{StoreId: long(121), TransactionItems: items(kv("n", "v", 0))})},
		{"NUL in a key", "/vss/putObjects", put(&vsspb.PutObjectRequest{TransactionItems: items(kv("a\x00b", "v", 0))})},
		{"NUL in a store id", "/vss/putObjects", marshal(t, &vsspb.PutObjectRequest{StoreId: "s\x00", TransactionItems: items(kv("n", "v", 0))})},
		{"put version -2", "/vss/putObjects", put(&vsspb.PutObjectRequest{TransactionItems: items(kv("n", "v", 0), kv("k", "v", -2))})},
		{"delete version -5", "/vss/putObjects", put(&vsspb.PutObjectRequest{DeleteItems: items(kv("k", "", -5))})},
		{"global version -2", "/vss/putObjects", put(&vsspb.PutObjectRequest{GlobalVersion: i64(-2), TransactionItems: items(kv("n", "v", 0))})},
		{"deleteObject version -2", "/vss/deleteObject", marshal(t, &vsspb.DeleteObjectRequest{StoreId: u.store, KeyValue: kv("k", "", -2)})},
		{"deleteObject without key_value", "/vss/deleteObject", marshal(t, &vsspb.DeleteObjectRequest{StoreId: u.store})},
		{"deleteObject of a too long key", "/vss/deleteObject", marshal(t, &vsspb.DeleteObjectRequest{StoreId: u.store, KeyValue: kv(long(601), "", -1)})},
		{"get of a too long key", "/vss/getObject", marshal(t, &vsspb.GetObjectRequest{StoreId: u.store, Key: long(601)})},
		{"list with a negative page size", "/vss/listKeyVersions", marshal(t, &vsspb.ListKeyVersionsRequest{StoreId: u.store, PageSize: i32(-1)})},
		{"list with a bad page token", "/vss/listKeyVersions", marshal(t, &vsspb.ListKeyVersionsRequest{StoreId: u.store, PageToken: str("x")})},
		{"list of a too long store id", "/vss/listKeyVersions", marshal(t, &vsspb.ListKeyVersionsRequest{StoreId: long(121)})},
	} {
		r := u.raw(c.path, nil, c.body)
		msg := r.requireVSSError(t, http.StatusBadRequest, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION)
		t.Logf("%s: %s", c.name, msg)
		require.Equal(t, before, h.snapshot(), c.name)
	}

	// The longest key and store id the reference allows are fine.
	require.NoError(t, u.c.PutObjects(context.Background(), &vsspb.PutObjectRequest{StoreId: long(120), TransactionItems: items(kv(long(600), "v", 0))}))
	before = h.snapshot()

	// Oversized: refused from Content-Length before the body is read, and a
	// chunked body is cut off past the limit.
	big := bytes.Repeat([]byte{1}, 64<<10+1)
	r := u.raw("/vss/putObjects", nil, big)
	r.requireVSSError(t, http.StatusRequestEntityTooLarge, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION)
	req, err := http.NewRequest(http.MethodPost, h.url+"/vss/putObjects", io.MultiReader(bytes.NewReader(big)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Test "+u.token)
	req.ContentLength = -1 // sent chunked
	h.send(req).requireVSSError(t, http.StatusRequestEntityTooLarge, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION)
	require.Equal(t, before, h.snapshot())

	// A declared length over the limit is answered before the body comes:
	// the client has sent 100 bytes of 10,000,000.
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /vss/putObjects HTTP/1.1\r\nHost: x\r\nX-Request-Id: vss-too-large\r\nAuthorization: Test %s\r\nContent-Length: 10000000\r\n\r\n%s", u.token, randomBytes(t, 100))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	response{status: resp.StatusCode, header: resp.Header, body: body}.requireVSSError(t, http.StatusRequestEntityTooLarge, vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION)
	require.EqualValues(t, 100, h.waitForRequestLog(t, "vss-too-large")["bytes_in"])
	ok := u.raw("/vss/getObject", map[string]string{"X-Request-Id": "vss-logged"}, marshal(t, &vsspb.GetObjectRequest{StoreId: u.store, Key: "k"}))
	require.Equal(t, http.StatusOK, ok.status)
	require.Equal(t, u.token[:12], h.waitForRequestLog(t, "vss-logged")["user"], "the request log names a prefix of the user")
	require.Equal(t, before, h.snapshot())
}

// TestVSSLiteralPrefix: a list's key prefix is a plain string: LIKE's
// wildcards and escape in it match only themselves.
func TestVSSLiteralPrefix(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := h.vssUser("/vss")
	require.NoError(t, u.put(nil, kv("a_b", "v", 0), kv("axb", "v", 0), kv("a%c", "v", 0), kv("abc", "v", 0), kv(`a\d`, "v", 0), kv("A_b", "v", 0)))
	for prefix, want := range map[string][]string{
		"a_":  {"a_b"},
		"a%":  {"a%c"},
		`a\`:  {`a\d`},
		"a":   {"a_b", "axb", "a%c", "abc", `a\d`},
		"":    {"a_b", "axb", "a%c", "abc", `a\d`, "A_b"},
		"%":   nil,
		"_":   nil,
		"A_b": {"A_b"},
	} {
		all, _, err := u.c.ListAll(context.Background(), u.store, prefix, nil)
		require.NoError(t, err)
		var keys []string
		for _, k := range all {
			keys = append(keys, k.Key)
		}
		require.ElementsMatch(t, want, keys, "prefix %q", prefix)
	}
}

// TestVSSIsolation: a user's data is reachable only by that user of that
// tenant: the same store and key of another user, or of the same user
// token under another tenant, are other data.
func TestVSSIsolation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addTenant("acme")
	a := h.vssUserNamed("/vss", "alice")
	b := h.vssUserNamed("/vss", "bob")
	acmeA := h.vssUserNamed("/t/acme/vss", "alice")
	b.store, acmeA.store = a.store, a.store

	require.NoError(t, a.put(i64(0), kv("k", "alice's", 0)))
	b.requireNoKey("k")
	acmeA.requireNoKey("k")
	require.EqualValues(t, 0, b.globalVersion())
	require.EqualValues(t, 0, acmeA.globalVersion())
	require.Empty(t, b.list(nil, nil, nil).KeyVersions)
	require.Empty(t, acmeA.list(nil, nil, nil).KeyVersions)

	// Writes of the others never touch alice's key.
	require.NoError(t, b.put(i64(0), kv("k", "bob's", 0)))
	require.NoError(t, acmeA.put(i64(0), kv("k", "acme alice's", 0)))
	require.NoError(t, b.del(kv("k", "", -1)))
	require.ErrorIs(t, acmeA.putDelete(nil, nil, items(kv("k", "", 5))), vssclient.ErrConflict)
	a.requireValue("k", "alice's", 1)
	acmeA.requireValue("k", "acme alice's", 1)
	b.requireNoKey("k")
	require.EqualValues(t, 1, a.globalVersion())
}

// TestVSSQuotas: a user's bytes and objects are limited (the tenant's, else
// the server's quotas, unless the operator set the user's own); a write
// past them is refused with INVALID_REQUEST (a client must not retry it),
// changes nothing, and is recorded.
func TestVSSQuotas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.QuotaBytes, c.QuotaObjects = 100, 4 })
	u := h.vssUser("/vss")
	ctx := context.Background()
	require.NoError(t, u.put(nil, kv("a", strings.Repeat("x", 60), 0)))

	before := h.snapshot()
	err := u.put(nil, kv("b", strings.Repeat("x", 41), 0))
	require.ErrorIs(t, err, vssclient.ErrInvalidRequest)
	require.Equal(t, http.StatusForbidden, err.(*vssclient.Error).Status)
	require.Contains(t, err.Error(), "quota exceeded: quota bytes, limit 100, used 60, requested 41")
	require.Equal(t, before, h.snapshot())
	// Overwriting counts the difference; deleting frees it.
	require.NoError(t, u.put(nil, kv("a", strings.Repeat("x", 20), 1), kv("b", strings.Repeat("x", 80), 0)))
	require.ErrorIs(t, u.put(nil, kv("a", strings.Repeat("x", 21), 2)), vssclient.ErrInvalidRequest)
	require.NoError(t, u.putDelete(nil, items(kv("c", strings.Repeat("x", 80), 0)), items(kv("b", "", 1))))

	// Objects: four keys, the global version's row counting as one.
	require.NoError(t, u.put(i64(0), kv("d", "", 0)))
	before = h.snapshot()
	err = u.put(nil, kv("e", "", 0))
	require.ErrorIs(t, err, vssclient.ErrInvalidRequest)
	require.Contains(t, err.Error(), "quota objects")
	require.Equal(t, before, h.snapshot())

	// The operator's per-user quota wins over the server's.
	_, err = h.pool.Exec(ctx, `INSERT INTO vss_user_quotas (tenant_id, user_token, quota_objects, updated_at) VALUES (1, $1, 10, now())`, u.token)
	require.NoError(t, err)
	require.NoError(t, u.put(nil, kv("e", "", 0)))
	// Another user is still held to the server's.
	v := h.vssUser("/vss")
	require.ErrorIs(t, v.put(nil, kv("a", strings.Repeat("x", 101), 0)), vssclient.ErrInvalidRequest)

	var bytesUsed, objects int64
	require.NoError(t, h.pool.QueryRow(ctx, `SELECT bytes, objects FROM vss_users WHERE user_token = $1`, u.token).Scan(&bytesUsed, &objects))
	require.EqualValues(t, 100, bytesUsed)
	require.EqualValues(t, 5, objects)
	var refusals int64
	require.NoError(t, h.pool.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM vss_refusals WHERE user_token = $1`, u.token).Scan(&refusals))
	require.EqualValues(t, 3, refusals)
}

// TestVSSLargeValue: a value larger than RETRIEVE_CHUNK_BYTES is sent a
// chunk at a time, each read in a query of its own, and arrives whole.
func TestVSSLargeValue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RetrieveChunkBytes = 4096 })
	u := h.vssUser("/vss")
	value := randomBytes(t, 50_001)
	require.NoError(t, u.c.PutObjects(context.Background(), &vsspb.PutObjectRequest{StoreId: u.store, TransactionItems: items(&vsspb.KeyValue{Key: "big", Value: value, Version: -1})}))
	r := u.raw("/vss/getObject", nil, marshal(t, &vsspb.GetObjectRequest{StoreId: u.store, Key: "big"}))
	require.Equal(t, http.StatusOK, r.status)
	want := marshal(t, &vsspb.GetObjectResponse{Value: &vsspb.KeyValue{Key: "big", Value: value, Version: 1}})
	require.Equal(t, want, r.body)
	require.Equal(t, fmt.Sprint(len(want)), r.header.Get("Content-Length"))

	// An empty value at version 0 keeps proto3's zero values out, as
	// proto.Marshal does.
	require.NoError(t, u.put(nil, kv("empty", "", 0)))
	r = u.raw("/vss/getObject", nil, marshal(t, &vsspb.GetObjectRequest{StoreId: u.store, Key: "empty"}))
	require.Equal(t, marshal(t, &vsspb.GetObjectResponse{Value: &vsspb.KeyValue{Key: "empty", Version: 1}}), r.body)
}
