// Package activity counts what happens that the stored data does not show
// (logins, reads, refusals) into daily counters for reports. Counts are
// added up in memory and flushed every few seconds with one upsert per day,
// tenant and kind, so counting costs a request no database work. A crash
// loses at most one interval of counts, which only reports read.
package activity

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"ldkbackup/internal/backup"
)

// Store adds counts to the daily counters.
type Store interface {
	ActivityAdd(ctx context.Context, day time.Time, tenant backup.TenantID, kind string, count, bytes int64) error
}

type key struct {
	day    time.Time
	tenant backup.TenantID
	kind   string
}

type counts struct{ n, bytes int64 }

// Recorder adds up activity until it is flushed.
type Recorder struct {
	store  Store
	now    func() time.Time
	logger *slog.Logger

	mu      sync.Mutex
	pending map[key]counts
}

// NewRecorder returns a Recorder that flushes to store.
func NewRecorder(store Store, now func() time.Time, logger *slog.Logger) *Recorder {
	return &Recorder{store: store, now: now, logger: logger, pending: map[key]counts{}}
}

// Add counts one event of kind (with bytes moved, if any) for tenant today.
func (r *Recorder) Add(tenant backup.TenantID, kind string, bytes int64) {
	k := key{day: r.now().UTC().Truncate(24 * time.Hour), tenant: tenant, kind: kind}
	r.mu.Lock()
	c := r.pending[k]
	r.pending[k] = counts{c.n + 1, c.bytes + bytes}
	r.mu.Unlock()
}

// Flush writes the counts added since the last flush. Counts that could not
// be written are kept for the next one.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = map[key]counts{}
	r.mu.Unlock()

	var firstErr error
	for k, c := range batch {
		err := r.store.ActivityAdd(ctx, k.day, k.tenant, k.kind, c.n, c.bytes)
		if err == nil {
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
		r.mu.Lock()
		p := r.pending[k]
		r.pending[k] = counts{p.n + c.n, p.bytes + c.bytes}
		r.mu.Unlock()
	}
	return firstErr
}

// Run flushes every interval until ctx is done, then once more.
func (r *Recorder) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.logger.Warn("activity counts lost at shutdown", "error", err)
			}
			cancel()
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
				r.logger.Warn("activity flush failed; counts kept for the next one", "error", err)
			}
		}
	}
}
