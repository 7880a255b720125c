package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The server's pool counters on its admin listener (/metrics). They tell
// whether requests queue for one of the pool's connections.
const (
	metricAcquires    = "ldkbackup_db_pool_acquires_total"
	metricWaits       = "ldkbackup_db_pool_empty_acquires_total"
	metricWaitSeconds = "ldkbackup_db_pool_acquire_wait_seconds_total"
	metricPoolMax     = "ldkbackup_db_pool_max_connections"
)

// poolCounters are the server's pool counters at one instant.
type poolCounters struct {
	acquires, waits, waitSeconds float64
}

// scrapePool reads the pool counters from a Prometheus text exposition.
func scrapePool(ctx context.Context, metricsURL string) (poolCounters, error) {
	m, err := scrapeMetrics(ctx, metricsURL, metricAcquires, metricWaits, metricWaitSeconds)
	if err != nil {
		return poolCounters{}, err
	}
	return poolCounters{acquires: m[metricAcquires], waits: m[metricWaits], waitSeconds: m[metricWaitSeconds]}, nil
}

// scrapeMetrics returns the values of the named unlabelled metrics; an
// error when one is missing (a server without these metrics).
func scrapeMetrics(ctx context.Context, metricsURL string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", metricsURL, resp.StatusCode)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", metricsURL, name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("%s: no %s", metricsURL, n)
		}
	}
	return out, nil
}
