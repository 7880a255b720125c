package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// startProfile fetches a CPU profile of the server covering the measured
// window of a run that starts now, into -pprof-dir/<label>.pprof, and
// returns a function that waits for it. Profiling costs the server a few
// per cent of CPU, so it is off unless asked for.
func (e *benchEnv) startProfile(ctx context.Context, label string, spec loadSpec) (wait func()) {
	if e.opts.pprofDir == "" || e.server == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.fetchProfile(ctx, label, spec); err != nil {
			e.log.Warn("CPU profile", "label", label, "error", err)
		}
	}()
	return func() { <-done }
}

func (e *benchEnv) fetchProfile(ctx context.Context, label string, spec loadSpec) error {
	select {
	case <-time.After(spec.warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	seconds := int(math.Max(1, math.Floor(spec.duration.Seconds())))
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", e.server.adminURL, seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d (does this server have ADMIN_PPROF?)", url, resp.StatusCode)
	}
	if err := os.MkdirAll(e.opts.pprofDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(e.opts.pprofDir, strings.ReplaceAll(label, "/", "_")+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	e.log.Info("CPU profile saved", "path", path)
	return f.Close()
}
