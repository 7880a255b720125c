package cache

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExpiresAtTTLOrDeadline(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := New[string, int](time.Second, 10)

	c.Put("a", 1, t0, time.Time{})
	c.Put("b", 2, t0, t0.Add(300*time.Millisecond)) // a deadline inside the TTL wins
	c.Put("c", 3, t0, t0.Add(time.Hour))            // the TTL wins
	c.Put("d", 4, t0, t0)                           // already over: not held

	for _, tc := range []struct {
		key  string
		at   time.Duration
		want int
		ok   bool
	}{
		{"a", 0, 1, true}, {"a", 999 * time.Millisecond, 1, true}, {"a", time.Second, 0, false},
		{"b", 299 * time.Millisecond, 2, true}, {"b", 300 * time.Millisecond, 0, false},
		{"c", 999 * time.Millisecond, 3, true}, {"c", time.Second, 0, false},
		{"d", 0, 0, false},
		{"missing", 0, 0, false},
	} {
		got, ok := c.Get(tc.key, t0.Add(tc.at))
		require.Equal(t, tc.ok, ok, "%s at %v", tc.key, tc.at)
		require.Equal(t, tc.want, got, "%s at %v", tc.key, tc.at)
	}
	require.Equal(t, 3, c.Len())

	c.Delete("a")
	_, ok := c.Get("a", t0)
	require.False(t, ok)
}

func TestBounded(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := New[int, int](time.Minute, 4)
	for i := range 4 {
		c.Put(i, i, t0, time.Time{})
	}
	// Full of live entries: a new key clears the lot, then is held.
	c.Put(100, 100, t0, time.Time{})
	require.Equal(t, 1, c.Len())
	v, ok := c.Get(100, t0)
	require.True(t, ok)
	require.Equal(t, 100, v)

	// Full with expired entries: only those go.
	c = New[int, int](time.Minute, 4)
	c.Put(1, 1, t0, t0.Add(time.Second))
	c.Put(2, 2, t0, t0.Add(time.Second))
	c.Put(3, 3, t0, time.Time{})
	c.Put(4, 4, t0, time.Time{})
	c.Put(5, 5, t0.Add(2*time.Second), time.Time{})
	require.Equal(t, 3, c.Len())
	for _, k := range []int{3, 4, 5} {
		_, ok := c.Get(k, t0.Add(2*time.Second))
		require.True(t, ok, "key %d", k)
	}
	// Replacing a held key never evicts.
	c.Put(5, 50, t0.Add(2*time.Second), time.Time{})
	c.Put(6, 6, t0.Add(2*time.Second), time.Time{})
	require.Equal(t, 4, c.Len())
}

func TestOff(t *testing.T) {
	t0 := time.Now()
	for _, c := range []*Cache[string, int]{New[string, int](0, 10), nil} {
		c.Put("a", 1, t0, time.Time{})
		_, ok := c.Get("a", t0)
		require.False(t, ok)
		require.Zero(t, c.Len())
		c.Delete("a")
	}
}
