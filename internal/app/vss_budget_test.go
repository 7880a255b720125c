package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/config"
	"ldkbackup/internal/vssclient"
	"ldkbackup/internal/vsspb"
)

// TestVSSPutCountsItsDecodedValues: a putObjects holds its body and the
// values decoded from it, a copy of their own, and both come out of the
// in-flight budget: a put whose two copies do not fit beside a stalled
// retrieve's buffer is refused with 503 and stores nothing; a smaller one
// is served.
func TestVSSPutCountsItsDecodedValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	n := newNode(t)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", randomBytes(t, stallBytes)).status)
	tok := h.login(n)
	small, _ := h.startReplicaWith(func(c *config.Config) {
		c.MaxBodyBytes, c.InFlightBytes, c.RetrieveChunkBytes = 64<<10, 96<<10, 32<<10
		c.InFlightWait = 100 * time.Millisecond
	})
	resp, conn := stalledRetrieve(t, small, "/v1/retrieve?network=regtest&label=channel_manager", tok)
	defer conn.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the stream holds one 32 KiB buffer from here on: 64 KiB are left")

	key, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	c := vssclient.New(small+"/vss", h.http, vssclient.Signature(key, h.clock.Now))
	put := func(size int) error {
		return c.PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: items(&vsspb.KeyValue{Key: "k", Value: randomBytes(t, size), Version: -1})})
	}
	before := h.snapshot()
	requireStatus(t, put(40<<10), http.StatusServiceUnavailable, vsspb.ErrorCode_INTERNAL_SERVER_EXCEPTION)
	require.Equal(t, before, h.snapshot(), "a refused put stores nothing")
	require.NoError(t, put(20<<10), "20 KiB and its copy fit")
}
