package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"ldkbackup/api"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/vssclient"
	"ldkbackup/internal/vsspb"
)

// testVSSAuthorizer admits "Authorization: Test <user token>" for every
// tenant: the tests of the protocol's rules name their users directly; the
// authorizers have tests of their own.
type testVSSAuthorizer struct{}

func (testVSSAuthorizer) Authorize(_ context.Context, h http.Header) (string, error) {
	token, ok := strings.CutPrefix(h.Get("Authorization"), "Test ")
	if !ok || token == "" {
		return "", backup.Errorf(backup.EUNAUTHORIZED, "missing or malformed Authorization header")
	}
	return token, nil
}

func testVSSAuthorizers(context.Context, *backup.Tenant) (api.VSSAuthorizer, error) {
	return testVSSAuthorizer{}, nil
}

// vssUser is one VSS user of the harness's server at base (a VSS prefix
// such as "/vss" or "/t/acme/vss"), with a store of its own.
type vssUser struct {
	h     *harness
	token string
	store string
	c     *vssclient.Client
}

func (h *harness) vssUser(prefix string) *vssUser {
	h.t.Helper()
	return h.vssUserNamed(prefix, "user-"+hex.EncodeToString(randomBytes(h.t, 6)))
}

func (h *harness) vssUserNamed(prefix, token string) *vssUser {
	return h.vssUserOf(token, vssclient.New(h.url+prefix, h.http, vssclient.Fixed(http.Header{"Authorization": {"Test " + token}})))
}

// vssUserOf is the user token's user with client c (whose authorization
// proves token), with a random store id of 0 to 5 characters, as the
// reference's tests use.
func (h *harness) vssUserOf(token string, c *vssclient.Client) *vssUser {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	store := hex.EncodeToString(b)[:int(b[0])%6]
	return &vssUser{h: h, token: token, store: store, c: c}
}

func kv(key, value string, version int64) *vsspb.KeyValue {
	return &vsspb.KeyValue{Key: key, Value: []byte(value), Version: version}
}

func (u *vssUser) put(global *int64, items ...*vsspb.KeyValue) error {
	return u.c.PutObjects(context.Background(), &vsspb.PutObjectRequest{StoreId: u.store, GlobalVersion: global, TransactionItems: items})
}

func (u *vssUser) putDelete(global *int64, puts, deletes []*vsspb.KeyValue) error {
	return u.c.PutObjects(context.Background(), &vsspb.PutObjectRequest{StoreId: u.store, GlobalVersion: global, TransactionItems: puts, DeleteItems: deletes})
}

func (u *vssUser) del(item *vsspb.KeyValue) error {
	return u.c.DeleteObject(context.Background(), &vsspb.DeleteObjectRequest{StoreId: u.store, KeyValue: item})
}

func (u *vssUser) get(key string) (*vsspb.KeyValue, error) {
	resp, err := u.c.GetObject(context.Background(), &vsspb.GetObjectRequest{StoreId: u.store, Key: key})
	if err != nil {
		return nil, err
	}
	return resp.Value, nil
}

// requireValue asserts that key holds value at version.
func (u *vssUser) requireValue(key, value string, version int64) {
	u.h.t.Helper()
	got, err := u.get(key)
	require.NoError(u.h.t, err)
	require.Equal(u.h.t, key, got.Key)
	require.Equal(u.h.t, version, got.Version)
	require.Equal(u.h.t, value, string(got.Value))
}

func (u *vssUser) requireNoKey(key string) {
	u.h.t.Helper()
	_, err := u.get(key)
	require.ErrorIs(u.h.t, err, vssclient.ErrNoSuchKey)
}

func (u *vssUser) globalVersion() int64 {
	u.h.t.Helper()
	got, err := u.get("global_version")
	require.NoError(u.h.t, err)
	return got.Version
}

func (u *vssUser) list(token *string, size *int32, prefix *string) *vsspb.ListKeyVersionsResponse {
	u.h.t.Helper()
	resp, err := u.c.ListKeyVersions(context.Background(), &vsspb.ListKeyVersionsRequest{StoreId: u.store, PageToken: token, PageSize: size, KeyPrefix: prefix})
	require.NoError(u.h.t, err)
	return resp
}

// raw sends body to a VSS path of the harness as a client might, with the
// user's authorization, and returns the answer.
func (u *vssUser) raw(path string, header map[string]string, body []byte) response {
	u.h.t.Helper()
	hdr := map[string]string{"Authorization": "Test " + u.token, "Content-Type": "application/octet-stream"}
	for k, v := range header {
		hdr[k] = v
	}
	return u.h.do(http.MethodPost, path, hdr, body)
}

// requireVSSError asserts a VSS refusal: the status, the protocol header and
// a decodable ErrorResponse with code.
func (r response) requireVSSError(t testing.TB, status int, code vsspb.ErrorCode) string {
	t.Helper()
	require.Equal(t, status, r.status, "body: %q", r.body)
	require.Equal(t, "0", r.header.Get("vss-protocol-version"))
	require.Equal(t, "application/octet-stream", r.header.Get("Content-Type"))
	var e vsspb.ErrorResponse
	require.NoError(t, proto.Unmarshal(r.body, &e), "error body must be an ErrorResponse: %q", r.body)
	require.Equal(t, code, e.ErrorCode, "message: %s", e.Message)
	require.NotEmpty(t, e.Message)
	return e.Message
}

func i64(v int64) *int64   { return &v }
func i32(v int32) *int32   { return &v }
func str(v string) *string { return &v }
