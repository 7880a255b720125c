package main

import (
	"math"
	"slices"
	"time"

	"ldkbackup/internal/percentile"
)

// sample is one finished operation: when it ended, how long it took, and
// whether it failed.
type sample struct {
	end     time.Time
	latency time.Duration
	failed  bool
}

// latencySummary holds the percentiles of a set of latencies, in
// milliseconds.
type latencySummary struct {
	P50, P90, P99 float64
}

// summarize computes nearest-rank percentiles: the p-th percentile is the
// smallest latency that at least p% of the operations did not exceed, so it
// is always a latency that was actually observed.
func summarize(latencies []time.Duration) latencySummary {
	if len(latencies) == 0 {
		return latencySummary{}
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	return latencySummary{
		P50: millis(percentile.NearestRank(sorted, 50)),
		P90: millis(percentile.NearestRank(sorted, 90)),
		P99: millis(percentile.NearestRank(sorted, 99)),
	}
}

func millis(d time.Duration) float64 {
	return round3(float64(d) / float64(time.Millisecond))
}

// round3 keeps three decimals: the JSON lines stay readable and no figure
// here is more precise than that.
func round3(x float64) float64 {
	return math.Round(x*1000) / 1000
}

// ratio is a/b, or nil when b is zero (a figure that was not measured).
func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	r := round3(a / b)
	return &r
}
