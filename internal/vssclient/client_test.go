package vssclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"ldkbackup/internal/vsspb"
)

// TestClientRefusesWhatVSSClientRefuses: a response without the protocol
// version is refused whatever its status (vss-client does not retry it), an
// error body that is no ErrorResponse is its own error, and an
// ErrorResponse becomes an *Error that matches its code's sentinel.
func TestClientRefusesWhatVSSClientRefuses(t *testing.T) {
	t.Parallel()
	var version string
	var status int
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "application/octet-stream", r.Header.Get("Content-Type"))
		require.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
		if version != "" {
			w.Header().Set(ProtocolVersionHeader, version)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL+"/vss/", nil, Bearer("tok"))
	ctx := context.Background()

	ok, err := proto.Marshal(&vsspb.GetObjectResponse{Value: &vsspb.KeyValue{Key: "k", Version: 3, Value: []byte("v")}})
	require.NoError(t, err)
	version, status, body = "", 200, ok
	_, err = c.GetObject(ctx, &vsspb.GetObjectRequest{Key: "k"})
	require.ErrorIs(t, err, ErrProtocolVersion)
	version = "1"
	_, err = c.GetObject(ctx, &vsspb.GetObjectRequest{Key: "k"})
	require.ErrorIs(t, err, ErrProtocolVersion)

	version = "0"
	got, err := c.GetObject(ctx, &vsspb.GetObjectRequest{Key: "k"})
	require.NoError(t, err)
	require.EqualValues(t, 3, got.Value.Version)

	body, err = proto.Marshal(&vsspb.GetObjectResponse{})
	require.NoError(t, err)
	_, err = c.GetObject(ctx, &vsspb.GetObjectRequest{Key: "k"})
	require.ErrorContains(t, err, "without a value")

	status, body = 400, []byte("Invalid request path.")
	_, err = c.GetObject(ctx, &vsspb.GetObjectRequest{Key: "k"})
	require.ErrorIs(t, err, ErrUndecodable)

	status, body = 409, mustMarshal(t, &vsspb.ErrorResponse{ErrorCode: vsspb.ErrorCode_CONFLICT_EXCEPTION, Message: "conflict"})
	err = c.PutObjects(ctx, &vsspb.PutObjectRequest{})
	require.ErrorIs(t, err, ErrConflict)
	require.False(t, errors.Is(err, ErrNoSuchKey))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 409, e.Status)
	require.Equal(t, "conflict", e.Message)
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}
