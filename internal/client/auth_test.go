package client

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// unreachableBase makes any accidental network call fail fast: these tests
// exercise only the cache.
const unreachableBase = "http://127.0.0.1:1"

func TestTokenCachedUntilExpiry(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1764169200000)
	c := newTestClient(t, func(cfg *Config) {
		cfg.BaseURL = unreachableBase
		cfg.Now = func() time.Time { return now }
	})
	c.tokens.store("tok", now.UnixMilli()+1)
	got, err := c.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, "tok", got)

	// The apps reuse a token only while expires > now.
	c.tokens.store("tok", now.UnixMilli())
	_, ok := c.tokens.cached(now.UnixMilli())
	require.False(t, ok)
}

// While one goroutine logs in, others wait for its token (honouring their
// context) instead of starting their own login.
func TestTokenWaitsForConcurrentLogin(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1764169200000)
	// Token reads the clock once before it looks at the cache, so counting
	// reads tells when each waiter has found no token and must wait.
	var reads atomic.Int64
	c := newTestClient(t, func(cfg *Config) {
		cfg.BaseURL = unreachableBase
		cfg.Now = func() time.Time { reads.Add(1); return now }
	})
	c.tokens.login <- struct{}{} // a login in progress

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Token(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	const waiters = 8
	start := reads.Load()
	results := make(chan string, waiters)
	errs := make(chan error, waiters)
	for range waiters {
		go func() {
			tok, err := c.Token(t.Context())
			results <- tok
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return reads.Load() == start+waiters }, time.Minute, time.Millisecond,
		"every waiter found the cache empty")
	c.tokens.store("fresh", now.UnixMilli()+300_000)
	<-c.tokens.login // the login finishes
	for range waiters {
		require.NoError(t, <-errs)
		require.Equal(t, "fresh", <-results)
	}
}
