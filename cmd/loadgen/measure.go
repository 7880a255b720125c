package main

import (
	"context"
	"errors"
	"math"
	"time"
)

// measurePersist pre-signs n persists following plan and sends them in a
// closed loop.
func (e *benchEnv) measurePersist(ctx context.Context, label string, plan persistPlan, bodies *bodySource, spec loadSpec, n int) (measurement, error) {
	start := time.Now()
	reqs, err := presign(ctx, e.baseURL, bodies, n, plan.target)
	if err != nil {
		return measurement{}, err
	}
	e.log.Info("pre-signed persists", "count", n, "body_bytes", bodies.size, "took", time.Since(start).Round(time.Millisecond))
	return e.measureServer(ctx, label, spec, e.persistOp(reqs))
}

// persistOp sends pre-signed request seq; errExhausted past the last one.
func (e *benchEnv) persistOp(reqs []persistRequest) operation {
	return func(ctx context.Context, seq int64) error {
		if seq >= int64(len(reqs)) {
			return errExhausted
		}
		return e.sender.send(ctx, &reqs[seq], seq%verifyEvery == 0)
	}
}

// poolSize is how many persists of size bytes to pre-sign for one server
// run: twice the fastest server rate seen for that size in this run, else
// the raw INSERT rate (which bounds the server's) with a margin, else a
// guess, over the warm-up and the window; at most presignBytes of bodies and
// presignMax requests. Signing costs ~65 µs a request and hashing ~0.5 ms a
// MiB, so a pool much larger than needed costs seconds of set-up.
func (e *benchEnv) poolSize(size int) int {
	limit := min(e.opts.presignMax, max(1, int(e.opts.presignBytes/int64(size))))
	var rate float64
	switch {
	case e.serverRates[size] > 0:
		rate = 2 * e.serverRates[size]
	case e.rawRates[size] > 0:
		rate = 1.25 * e.rawRates[size]
	default:
		rate = guessRate(size)
	}
	want := rate * (e.opts.warmup + e.opts.duration).Seconds()
	return min(limit, max(1000, int(math.Ceil(want))))
}

// guessRate is the rate assumed for a body size nothing in this run has
// measured yet: the target for small bodies, and 200 MiB/s (more
// than this machine's WAL takes) for large ones. A server faster than this
// runs out of bodies, which its report says.
func guessRate(size int) float64 {
	return min(3000, float64(200*mib)/float64(size))
}

func (e *benchEnv) noteServerRate(size int, rps float64) {
	e.serverRates[size] = max(e.serverRates[size], rps)
}

func (e *benchEnv) spec() loadSpec {
	return loadSpec{concurrency: e.opts.concurrency, warmup: e.opts.warmup, duration: e.opts.duration}
}

// measureServer runs op against the server and adds the server's CPU and
// peak memory to the measurement. label names the run's CPU profile.
func (e *benchEnv) measureServer(ctx context.Context, label string, spec loadSpec, op operation) (measurement, error) {
	checkpoint(ctx, e)
	e.rssPerScenario = e.probe.resetPeakRSS()
	waitProfile := e.startProfile(ctx, label, spec)
	r, err := runClosedLoop(ctx, spec, e.probe, op)
	waitProfile()
	if err != nil {
		return measurement{}, err
	}
	m := newMeasurement(r)
	if e.probe.serverPID != 0 {
		if r.requests > 0 {
			cpu := round3(r.usage.serverCPU * 1000 / float64(r.requests))
			m.ServerCPUPer1k = &cpu
		}
		rss := round3(float64(e.probe.peakRSS()) / mib)
		m.ServerPeakRSSMiB = &rss
	}
	if p := r.usage.pool; p != nil && r.requests > 0 {
		perOp := func(x float64) *float64 { v := round3(x / float64(r.requests)); return &v }
		m.ServerDBAcquiresPerOp = perOp(p.acquires)
		m.ServerDBWaitMsPerOp = perOp(p.waitSeconds * 1000)
		m.ServerDBWaitedShare = ratio(p.waits, p.acquires)
	}
	return m, nil
}

// measureRaw runs op against PostgreSQL directly.
func (e *benchEnv) measureRaw(ctx context.Context, spec loadSpec, op operation) (measurement, error) {
	checkpoint(ctx, e)
	r, err := runClosedLoop(ctx, spec, e.probe, op)
	if err != nil {
		return measurement{}, err
	}
	if r.requests == 0 && r.firstError != "" {
		return measurement{}, errors.New("raw baseline: " + r.firstError)
	}
	return newMeasurement(r), nil
}
