package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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
