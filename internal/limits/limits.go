// Package limits applies the rate limits that are checked outside a write:
// per client address before any signature is checked, and per node on reads.
// The counters live in PostgreSQL (rate_hit), so every replica enforces the
// same numbers. Limits on writes are enforced by persist_object itself.
package limits

import (
	"context"
	"time"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/cache"
)

// Store holds the shared counters.
type Store interface {
	// RateHit counts one request of key in its window and returns the count;
	// a backup.Error with code ERATELIMITED past limit.
	RateHit(ctx context.Context, key string, now time.Time, windowSeconds, limit int64) (int64, error)
	// RatePeek returns how much of key's allowance of limit per window is
	// taken at now, without counting, and how long until one more request
	// would pass.
	RatePeek(ctx context.Context, key string, now time.Time, windowSeconds, limit int64) (int64, time.Duration, error)
	// HitNode counts a read that proved node's key against its allowance
	// of limit a minute (the store records a refusal).
	HitNode(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, now time.Time, limit int64) error
}

// Limiter checks and counts requests against a tenant's limits.
type Limiter struct {
	store Store
	now   func() time.Time
	// allowed holds addresses whose peek found them under their limit, for
	// at most the cache TTL and never past their window: a signed or token
	// request from a well-behaved address then costs no query before its
	// proof is checked. Only allowances are held; this replica's own counts
	// of an address renew or drop its entry.
	allowed *cache.Cache[addressKey, struct{}]
}

type addressKey struct {
	tenant backup.TenantID
	addr   string
}

// cachedAddresses bounds the allowance cache (see cache.Cache).
const cachedAddresses = 100_000

// NewLimiter returns a Limiter over store. An address found under its limit
// is not peeked at again for cacheTTL (0: on every request), so an address
// that goes over its limit on another replica is refused here within
// cacheTTL.
func NewLimiter(store Store, now func() time.Time, cacheTTL time.Duration) *Limiter {
	return &Limiter{store: store, now: now, allowed: cache.New[addressKey, struct{}](cacheTTL, cachedAddresses)}
}

// HitAddress counts a login request (challenge or response), or a failed
// signature or token, against the client address. The count it returns
// keeps this replica's allowance of the address up to date: still under the
// limit, it stays allowed; at the limit, the next peek refuses it.
func (l *Limiter) HitAddress(ctx context.Context, t *backup.Tenant, addr string) error {
	limit := t.Limits.AddressPerMinute
	if limit <= 0 {
		return nil
	}
	now := l.now()
	key := addressKey{t.ID, addr}
	n, err := l.store.RateHit(ctx, backup.RateKeyAddress(t.ID, addr), now, backup.MinuteWindow, limit)
	if err != nil || n >= limit {
		l.allowed.Delete(key)
		return err
	}
	l.allowed.Put(key, struct{}{}, now, now.Add(time.Minute))
	return nil
}

// CheckAddress refuses a request from an address that has used up its
// allowance, without counting it: signed and token requests are counted only
// when their proof fails, so honest wallets behind one address do not use up
// each other's allowance.
func (l *Limiter) CheckAddress(ctx context.Context, t *backup.Tenant, addr string) error {
	limit := t.Limits.AddressPerMinute
	if limit <= 0 {
		return nil
	}
	now := l.now()
	key := addressKey{t.ID, addr}
	if _, ok := l.allowed.Get(key, now); ok {
		return nil
	}
	n, retry, err := l.store.RatePeek(ctx, backup.RateKeyAddress(t.ID, addr), now, backup.MinuteWindow, limit)
	if err != nil {
		return err
	}
	if n >= limit {
		return backup.RateLimited(backup.RefusedRateAddress, max(retry, time.Second))
	}
	l.allowed.Put(key, struct{}{}, now, now.Add(time.Minute))
	return nil
}

// HitNode counts a read that proved the node's key.
func (l *Limiter) HitNode(ctx context.Context, t *backup.Tenant, node backup.NodeKey) error {
	if t.Limits.NodePerMinute <= 0 {
		return nil
	}
	return l.store.HitNode(ctx, t.ID, node, l.now(), t.Limits.NodePerMinute)
}
