// Package cache keeps values a replica read from PostgreSQL for a short
// time, so that a hot read (a tenant on every request, a session token on
// every read of a restore) does not cost a query each time. PostgreSQL stays
// the only place of record: every entry expires, and a replica that has not
// got a value asks the database.
package cache

import (
	"sync"
	"time"
)

// Cache maps keys to values, each until its own deadline. It holds at most
// max entries; when full it first drops the expired ones and, if that frees
// nothing, everything (a burst of distinct keys then costs the queries the
// cache would have saved, and never memory). The zero TTL turns it off.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[K]entry[V]
}

type entry[V any] struct {
	value V
	until time.Time
}

// New returns a cache whose entries live at most ttl and which holds at
// most max of them.
func New[K comparable, V any](ttl time.Duration, max int) *Cache[K, V] {
	return &Cache[K, V]{ttl: ttl, max: max, entries: make(map[K]entry[V])}
}

// Get returns the value of key if it is held and has not expired at now.
func (c *Cache[K, V]) Get(key K, now time.Time) (V, bool) {
	if c == nil || c.ttl <= 0 {
		var zero V
		return zero, false
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || !now.Before(e.until) {
		var zero V
		return zero, false
	}
	return e.value, true
}

// Put holds value for key from now until the TTL ends or until, whichever
// comes first (the zero until: the TTL).
func (c *Cache[K, V]) Put(key K, value V, now, until time.Time) {
	if c == nil || c.ttl <= 0 {
		return
	}
	end := now.Add(c.ttl)
	if !until.IsZero() && until.Before(end) {
		end = until
	}
	if !now.Before(end) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[key] = entry[V]{value: value, until: end}
}

// Delete forgets key: this replica's own change to it takes effect at once.
func (c *Cache[K, V]) Delete(key K) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// Len is the number of entries held, expired ones included.
func (c *Cache[K, V]) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
