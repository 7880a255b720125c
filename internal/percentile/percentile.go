// Package percentile computes the latency percentiles that the load
// benchmark and the drills print, one way for both, so their figures
// compare.
package percentile

import (
	"math"
	"time"
)

// NearestRank returns the p-th percentile (0..100) of sorted (ascending, not
// empty): the smallest value that at least p% of the values do not exceed,
// so it is always a value that was observed.
func NearestRank(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
