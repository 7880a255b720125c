package main

import (
	"context"
	"sync"
	"time"
)

// Drill: a node's burst over its allowance is paced, not refused. The
// Android client turns a refusal into a lost backup, so 150 monitors sent at
// once by one node with the allowance at 120 a minute must all be stored:
// the first 120 at once, the rest each waiting for its turn (one every half
// second, the last about 15 s after the burst), none past PACE_MAX_WAIT.
const (
	burstMonitors  = 150
	burstPerMinute = 120
	burstMaxWait   = 35 * time.Second
)

type burstFigures struct {
	Monitors       int            `json:"monitors"`
	PerMinute      int            `json:"allowance_per_minute"`
	Acked          int            `json:"acked"`
	Statuses       map[string]int `json:"statuses"`
	Latency        latencySummary `json:"latency"`
	SlowestSeconds float64        `json:"slowest_s"`
	Integrity      integrity      `json:"integrity"`
}

func burstDrill(ctx context.Context, e *env, v *verdict) (any, error) {
	dbURL, err := e.database(ctx, "drill_burst")
	if err != nil {
		return nil, err
	}
	server, err := e.startServer(ctx, serverSpec{name: "burst", dbURL: dbURL, env: []string{
		"RATE_LIMITS=on", "RATE_PER_NODE_PER_MINUTE=120", "RATE_PER_ADDRESS_PER_MINUTE=100000", "PACE_MAX_WAIT=30s",
	}})
	if err != nil {
		return nil, err
	}
	w, err := newWallet()
	if err != nil {
		return nil, err
	}
	hc := newHTTPClientTimeout(burstMonitors, time.Minute)
	f := &burstFigures{Monitors: burstMonitors, PerMinute: burstPerMinute}
	var (
		mu       sync.Mutex
		lat      latencies
		statuses statusCounts
		acked    int
		wg       sync.WaitGroup
	)
	for i := range burstMonitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := randomBytes(4 << 10)
			start := time.Now()
			res := w.persist(ctx, hc, server.BaseURL, e.serverPub, bytesUpload(monitor(i), body))
			took := time.Since(start)
			statuses.add(res.reply)
			mu.Lock()
			defer mu.Unlock()
			lat.add(took)
			if res.acked {
				acked++
			}
			f.SlowestSeconds = max(f.SlowestSeconds, took.Seconds())
		}()
	}
	wg.Wait()
	f.Acked, f.Statuses, f.Latency = acked, statuses.snapshot(), lat.summary()
	v.require(f.Acked == burstMonitors, "%d of %d monitors stored (%v)", f.Acked, burstMonitors, f.Statuses)
	v.require(f.SlowestSeconds < burstMaxWait.Seconds(), "the slowest persist took %.1f s", f.SlowestSeconds)
	if f.Integrity, err = checkIntegrity(ctx, dbURL); err != nil {
		return f, err
	}
	v.require(f.Integrity.Objects == int64(f.Acked), "%d objects stored for %d acknowledged persists", f.Integrity.Objects, f.Acked)
	v.require(f.Integrity.UsageDrift == 0 && f.Integrity.BadLatest == 0 && f.Integrity.CorruptPayloads == 0, "integrity: %+v", f.Integrity)
	return f, nil
}
