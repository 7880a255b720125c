package main

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"ldkbackup/internal/percentile"
)

// latencies collects request durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// latencySummary is printed in milliseconds.
type latencySummary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (l *latencies) summary() latencySummary {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	if len(d) == 0 {
		return latencySummary{}
	}
	slices.Sort(d)
	return latencySummary{Count: len(d), P50: ms(percentile.NearestRank(d, 50)), P99: ms(percentile.NearestRank(d, 99)), Max: ms(d[len(d)-1])}
}

// ms is d in milliseconds with one decimal.
func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

// mib is n bytes in MiB with one decimal.
func mib(n int64) float64 { return math.Round(float64(n)/(1<<20)*10) / 10 }

// verdict collects the promises a drill found broken, and notes: things
// worth fixing that break no promise.
type verdict struct {
	mu       sync.Mutex
	failures []string
	notes    []string
}

func (v *verdict) note(format string, args ...any) {
	v.mu.Lock()
	v.notes = append(v.notes, fmt.Sprintf(format, args...))
	v.mu.Unlock()
}

// require records a broken promise when ok is false.
func (v *verdict) require(ok bool, format string, args ...any) {
	if ok {
		return
	}
	v.mu.Lock()
	v.failures = append(v.failures, fmt.Sprintf(format, args...))
	v.mu.Unlock()
}

// statusCounts counts replies by status; "none" for no reply at all.
type statusCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *statusCounts) add(r reply) {
	key := "none"
	if r.status != 0 {
		key = fmt.Sprint(r.status)
	}
	s.mu.Lock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[key]++
	s.mu.Unlock()
}

func (s *statusCounts) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.n))
	for k, v := range s.n {
		out[k] = v
	}
	return out
}
