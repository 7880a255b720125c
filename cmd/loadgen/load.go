package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// errExhausted ends a run early: the pre-signed bodies ran out. Signing more
// during the run would load the machine being measured, so the run stops and
// says so instead.
var errExhausted = errors.New("pre-signed bodies exhausted")

// operation performs one request (or one restore). seq numbers the calls of
// a run from 0 across all workers, so each call can pick its own key, body or
// node without locks.
type operation func(ctx context.Context, seq int64) error

// loadSpec is the shape of a closed-loop run: concurrency workers, each
// starting its next operation as soon as the previous one returns.
type loadSpec struct {
	concurrency int
	warmup      time.Duration // not measured: connections open, caches fill
	duration    time.Duration // the measured window
}

// window is what happened inside the measured window.
type window struct {
	requests  int64 // operations that ended in the window, failed or not
	errors    int64
	latencies []time.Duration // of the successful ones
}

// windowOf keeps the samples that ended in [start, end].
func windowOf(samples []sample, start, end time.Time) window {
	var w window
	for _, s := range samples {
		if s.end.Before(start) || s.end.After(end) {
			continue
		}
		w.requests++
		if s.failed {
			w.errors++
			continue
		}
		w.latencies = append(w.latencies, s.latency)
	}
	return w
}

// run is one finished closed-loop run.
type run struct {
	window
	seconds    float64
	usage      usageDelta
	exhausted  bool
	firstError string
}

// runClosedLoop runs op for spec.warmup+spec.duration and measures the
// window after the warm-up. Resource usage is sampled at both edges of the
// window. Operations still in flight at the end are waited for but not
// counted.
func runClosedLoop(ctx context.Context, spec loadSpec, p *probe, op operation) (run, error) {
	var (
		seq       atomic.Int64
		stop      atomic.Bool
		exhausted = make(chan struct{})
		once      sync.Once
		firstErr  atomic.Pointer[string]
		perWorker = make([][]sample, spec.concurrency)
		wg        sync.WaitGroup
	)
	begin := time.Now()
	for w := range spec.concurrency {
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				t0 := time.Now()
				err := op(ctx, seq.Add(1)-1)
				if errors.Is(err, errExhausted) {
					once.Do(func() { close(exhausted) })
					return
				}
				if err != nil && ctx.Err() == nil {
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
				}
				perWorker[w] = append(perWorker[w], sample{end: time.Now(), latency: time.Since(t0), failed: err != nil})
			}
		})
	}

	r, err := measureWindow(ctx, begin.Add(spec.warmup), spec.duration, p, exhausted)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return run{}, err
	}
	var all []sample
	for _, s := range perWorker {
		all = append(all, s...)
	}
	r.window = windowOf(all, r.usage.start, r.usage.end)
	if msg := firstErr.Load(); msg != nil {
		r.firstError = *msg
	}
	return r, nil
}

// measureWindow samples resource usage at start, then at the end of the
// window or when the bodies run out, whichever comes first.
func measureWindow(ctx context.Context, start time.Time, duration time.Duration, p *probe, exhausted <-chan struct{}) (run, error) {
	var r run
	if err := sleepUntil(ctx, start, exhausted); err != nil {
		return r, err
	}
	before, err := p.snapshot(ctx)
	if err != nil {
		return r, err
	}
	if err := sleepUntil(ctx, before.at.Add(duration), exhausted); errors.Is(err, errExhausted) {
		r.exhausted = true
	} else if err != nil {
		return r, err
	}
	after, err := p.snapshot(ctx)
	if err != nil {
		return r, err
	}
	r.usage = after.since(before)
	r.seconds = r.usage.end.Sub(r.usage.start).Seconds()
	return r, nil
}

// sleepUntil waits for t; errExhausted when exhausted closes first.
func sleepUntil(ctx context.Context, t time.Time, exhausted <-chan struct{}) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-exhausted:
		return errExhausted
	case <-ctx.Done():
		return ctx.Err()
	}
}
