package client

import (
	"context"
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
	c := newTestClient(t, func(cfg *Config) {
		cfg.BaseURL = unreachableBase
		cfg.Now = func() time.Time { return now }
	})
	c.tokens.login <- struct{}{} // a login in progress

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Token(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	const waiters = 8
	results := make(chan string, waiters)
	errs := make(chan error, waiters)
	for range waiters {
		go func() {
			tok, err := c.Token(t.Context())
			results <- tok
			errs <- err
		}()
	}
	time.Sleep(10 * time.Millisecond)
	c.tokens.store("fresh", now.UnixMilli()+300_000)
	<-c.tokens.login // the login finishes
	for range waiters {
		require.NoError(t, <-errs)
		require.Equal(t, "fresh", <-results)
	}
}
