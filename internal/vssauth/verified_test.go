package vssauth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestVerifiedHeaders: a header that verified is admitted again without
// being verified again, but only while its time is within the window; a
// header that failed is never remembered; what is remembered is bounded.
func TestVerifiedHeaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	priv := testKey(t, 7)
	start := time.Unix(1764460800, 0)
	clock := &steppingClock{now: start}
	a := NewSignature(time.Hour, clock.Now).(*signature)
	header := SignatureHeader(priv, start)
	want := strings.ToLower(header[:66])

	for range 3 {
		token, err := a.Authorize(ctx, authHeader(header))
		require.NoError(t, err)
		require.Equal(t, want, token)
	}
	_, seen := a.verified.get(header)
	require.True(t, seen, "a verified header is remembered")

	clock.Set(start.Add(time.Hour + time.Second))
	token, err := a.Authorize(ctx, authHeader(header))
	requireRefused(t, token, err, "a remembered header is still held to the window")

	clock.Set(start)
	forged := header[:66] + strings.Repeat("0", 128) + header[194:]
	for range 2 {
		token, err := a.Authorize(ctx, authHeader(forged))
		requireRefused(t, token, err)
	}
	_, seen = a.verified.get(forged)
	require.False(t, seen, "a header that failed is not remembered")

	c := newVerifiedHeaders(4)
	for i := range 20 {
		c.add(strings.Repeat("h", i+1), SignedHeader{})
	}
	require.LessOrEqual(t, len(c.current)+len(c.prev), 8)
	_, seen = c.get(strings.Repeat("h", 20))
	require.True(t, seen, "the newest header is kept")
	_, seen = c.get("h")
	require.False(t, seen, "the oldest is dropped")
}
