package app_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/app"
	"ldkbackup/internal/vssauth"
	"ldkbackup/internal/vssclient"
	"ldkbackup/internal/vsspb"
)

// A server built without WithVSSAuthorizers (what `server serve` runs)
// admits ldk-node's signature header on every tenant's VSS prefix, and
// refuses a header signed too long ago with 401 AUTH, storing nothing.
func TestDefaultVSSAuthIsSignatureAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addTenant("acme")
	a, err := app.New(context.Background(), h.cfg, slog.New(slog.NewJSONHandler(h.logs, nil)), h.clock)
	require.NoError(t, err)
	require.NoError(t, a.Start())
	t.Cleanup(func() { _ = a.Close() })

	key, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	signed := func(at func() time.Time) vssclient.HeaderProvider {
		return vssclient.HeaderFunc(func(context.Context, []byte) (http.Header, error) {
			return http.Header{"Authorization": {vssauth.SignatureHeader(key, at())}}, nil
		})
	}
	for _, prefix := range []string{"/vss", "/t/acme/vss"} {
		c := vssclient.New(a.URL()+prefix, h.http, signed(h.clock.Now))
		ctx := context.Background()
		require.NoError(t, c.PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: []*vsspb.KeyValue{{Key: "k", Value: []byte(prefix), Version: -1}}}))
		got, err := c.GetObject(ctx, &vsspb.GetObjectRequest{StoreId: "s", Key: "k"})
		require.NoError(t, err)
		require.Equal(t, []byte(prefix), got.Value.Value)

		before := h.snapshot()
		stale := vssclient.New(a.URL()+prefix, h.http, signed(func() time.Time { return h.clock.Now().Add(-vssauth.DefaultSignatureWindow - time.Hour) }))
		err = stale.PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: []*vsspb.KeyValue{{Key: "k2", Value: []byte("x"), Version: -1}}})
		var vErr *vssclient.Error
		require.True(t, errors.As(err, &vErr), "%v", err)
		require.Equal(t, http.StatusUnauthorized, vErr.Status)
		require.ErrorIs(t, err, vssclient.ErrAuth)
		require.Equal(t, before, h.snapshot())
	}
}
