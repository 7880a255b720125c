package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentileNearestRank(t *testing.T) {
	t.Parallel()
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"one value is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"p50 of an even count is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p50 of an odd count is the middle", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"p99 of 1..100 is 99", ms(hundred...), 99, 99 * time.Millisecond},
		{"p90 of 1..100 is 90", ms(hundred...), 90, 90 * time.Millisecond},
		{"p99 of ten values is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p0 is the smallest, not out of range", ms(3, 4), 0, 3 * time.Millisecond},
		{"p100 is the largest", ms(3, 4), 100, 4 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, percentile(tc.sorted, tc.p))
		})
	}
}

func TestSummarizeSortsAndConvertsToMilliseconds(t *testing.T) {
	t.Parallel()
	in := []time.Duration{9 * time.Millisecond, 1500 * time.Microsecond, 3 * time.Millisecond}
	got := summarize(in)
	require.Equal(t, latencySummary{P50: 3, P90: 9, P99: 9}, got)
	require.Equal(t, 9*time.Millisecond, in[0], "the caller's slice is not reordered")
	require.Equal(t, latencySummary{}, summarize(nil))
}

func TestWindowCountsOnlyOperationsEndingInside(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	end := start.Add(10 * time.Second)
	samples := []sample{
		{end: start.Add(-time.Millisecond), latency: time.Second},           // warm-up
		{end: start, latency: 2 * time.Millisecond},                         // first in the window
		{end: start.Add(5 * time.Second), latency: 4 * time.Millisecond},    // inside
		{end: start.Add(6 * time.Second), latency: time.Hour, failed: true}, // an error counts, its latency does not
		{end: end, latency: 6 * time.Millisecond},                           // last in the window
		{end: end.Add(time.Nanosecond), latency: time.Second},               // after
	}
	w := windowOf(samples, start, end)
	require.Equal(t, int64(4), w.requests)
	require.Equal(t, int64(1), w.errors)
	require.Equal(t, latencySummary{P50: 4, P90: 6, P99: 6}, summarize(w.latencies))
}
