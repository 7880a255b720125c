package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// The read-back verdicts rest on mayBeLatest: after an acknowledged body
// the latest version may only be that body or one sent later that the
// server did not refuse (its reply may have been lost after the commit).
func TestMayBeLatest(t *testing.T) {
	t.Parallel()
	l := newLedger[object]()
	obj := object{label: "channel_manager"}
	send := func(b byte, status int, acked bool) upload {
		u := bytesUpload(obj, []byte{b})
		l.record(obj, sentPersist(u, persistResult{reply: reply{status: status}, acked: acked, version: int64(b)}))
		return u
	}
	lost := send(1, 0, false) // no reply: may have been committed
	require.Contains(t, l.mayBeLatest(obj), lost.sum)
	require.False(t, l.anyAcked(obj))

	acked := send(2, http.StatusOK, true)
	refused := send(3, http.StatusConflict, false)
	failed := send(4, http.StatusServiceUnavailable, false)
	got := l.mayBeLatest(obj)
	require.Len(t, got, 2)
	require.Equal(t, int64(2), got[acked.sum], "with the version it was acknowledged as")
	require.Contains(t, got, failed.sum)
	require.NotContains(t, got, refused.sum, "a 4xx stores nothing")
	require.NotContains(t, got, lost.sum, "older than the acknowledged body")
	require.Equal(t, 1, l.ackedCount())
}

func TestJSONErrorShape(t *testing.T) {
	t.Parallel()
	require.True(t, reply{body: []byte(`{"error":"storage unavailable, try again"}`)}.jsonError())
	require.False(t, reply{body: []byte(`{"error":""}`)}.jsonError())
	require.False(t, reply{body: []byte(`Service Unavailable`)}.jsonError())
	require.False(t, reply{body: []byte(`{"message":"x"}`)}.jsonError())
}
