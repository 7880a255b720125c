package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/sync/errgroup"

	"ldkbackup/internal/client"
)

// ledger is what a client was told about its writes: every body it sent,
// per key (a v1 object, a VSS key) and in order, and which the server
// acknowledged with which version. After a drill the server must hand back
// every acknowledged body. One writer writes each key, one write at a time.
type ledger[K comparable] struct {
	mu   sync.Mutex
	sent map[K][]sentBody
}

type sentBody struct {
	sum   [32]byte
	acked bool
	// version is the version the write makes when it applies: the
	// server's answer for an acknowledged v1 persist (0 for one not
	// acknowledged: unknown); for VSS what the put's version rule gives.
	version int64
	// refused: the server answered 4xx, which stores nothing. Any other
	// failure (5xx, no reply) may have been committed before the reply was
	// lost, so that body may legitimately be the latest.
	refused bool
}

func newLedger[K comparable]() *ledger[K] { return &ledger[K]{sent: map[K][]sentBody{}} }

func (l *ledger[K]) record(k K, s sentBody) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[k] = append(l.sent[k], s)
}

// sentPersist is a v1 persist's entry.
func sentPersist(u upload, res persistResult) sentBody {
	return sentBody{sum: u.sum, acked: res.acked, version: res.version, refused: res.status >= 400 && res.status < 500}
}

// mayBeLatest is the set of bodies the latest version of k may hold, with
// the version each was written as: the last acknowledged one, or any sent
// after it that was not refused.
func (l *ledger[K]) mayBeLatest(k K) map[[32]byte]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[[32]byte]int64{}
	for _, s := range l.sent[k] {
		if s.acked {
			clear(out)
		}
		if !s.refused {
			out[s.sum] = s.version
		}
	}
	return out
}

// anyAcked says whether a write of k was acknowledged.
func (l *ledger[K]) anyAcked(k K) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sent[k] {
		if s.acked {
			return true
		}
	}
	return false
}

// ackedCount is how many writes the server acknowledged.
func (l *ledger[K]) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, bodies := range l.sent {
		for _, s := range bodies {
			if s.acked {
				n++
			}
		}
	}
	return n
}

// last is the latest write sent to k.
func (l *ledger[K]) last(k K) (sentBody, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sent := l.sent[k]
	if len(sent) == 0 {
		return sentBody{}, false
	}
	return sent[len(sent)-1], true
}

// keys returns every key written to.
func (l *ledger[K]) keys() []K {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]K, 0, len(l.sent))
	for k := range l.sent {
		out = append(out, k)
	}
	return out
}

// readBack is the outcome of reading every acknowledged persist back.
type readBack struct {
	Acknowledged int `json:"acknowledged"`
	// Lost counts acknowledged versions that are not readable with exactly
	// the acknowledged bytes (missing, different, or unreadable).
	Lost int `json:"lost"`
	// WrongLatest counts objects whose latest version holds bytes that are
	// neither the last acknowledged body nor one sent after it.
	WrongLatest int      `json:"wrong_latest"`
	Examples    []string `json:"examples,omitempty"`
}

func (r *readBack) add(o readBack) {
	r.Acknowledged += o.Acknowledged
	r.Lost += o.Lost
	r.WrongLatest += o.WrongLatest
	for _, e := range o.Examples {
		if len(r.Examples) < 5 {
			r.Examples = append(r.Examples, e)
		}
	}
}

func (r *readBack) example(format string, args ...any) {
	if len(r.Examples) < 5 {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// readBackAll reads back every wallet's acknowledged persists through the
// API, wallets in parallel.
func readBackAll(ctx context.Context, hc *http.Client, baseURL string, wallets []*wallet, ledgers []*ledger[object]) (readBack, error) {
	results := make([]readBack, len(wallets))
	g, ctx := errgroup.WithContext(ctx)
	for i := range wallets {
		g.Go(func() error {
			var err error
			results[i], err = readBackWallet(ctx, hc, baseURL, wallets[i], ledgers[i])
			return err
		})
	}
	err := g.Wait()
	var total readBack
	for _, r := range results {
		total.add(r)
	}
	return total, err
}

// readBackWallet logs in and retrieves each acknowledged version by number
// (the drills keep every version's bytes: RETAIN_VERSIONS is set high), then
// each object's latest version.
func readBackWallet(ctx context.Context, hc *http.Client, baseURL string, w *wallet, l *ledger[object]) (readBack, error) {
	var r readBack
	if _, err := w.login(ctx, hc, baseURL); err != nil {
		return r, fmt.Errorf("log in to read back: %w", err)
	}
	l.mu.Lock()
	sent := make(map[object][]sentBody, len(l.sent))
	for obj, bodies := range l.sent {
		sent[obj] = append([]sentBody(nil), bodies...)
	}
	l.mu.Unlock()

	for obj, bodies := range sent {
		anyAcked := false
		for _, s := range bodies {
			if !s.acked {
				continue
			}
			anyAcked = true
			r.Acknowledged++
			got := w.retrieve(ctx, hc, baseURL, obj, s.version)
			if got.status != http.StatusOK || sha256.Sum256(got.body) != s.sum {
				r.Lost++
				r.example("%s version %d acknowledged, read back: %s", obj, s.version, got)
			}
		}
		latest := w.retrieve(ctx, hc, baseURL, obj, 0)
		if latest.status == http.StatusNotFound && !anyAcked {
			continue // nothing acknowledged, and nothing unacknowledged committed
		}
		if _, ok := l.mayBeLatest(obj)[sha256.Sum256(latest.body)]; latest.status != http.StatusOK || !ok {
			r.WrongLatest++
			r.example("%s latest version: %s", obj, latest)
		}
	}
	return r, ctx.Err()
}

// restoreAll restores each wallet as the apps do (internal/client: list,
// retrieve every file, decrypt with the node key) and returns how many got
// every one of objects that its ledger says was acknowledged.
func restoreAll(ctx context.Context, e *env, baseURL string, hc *http.Client, wallets []*wallet, ledgers []*ledger[object], objects []object, v *verdict) int {
	restored := 0
	for i, w := range wallets {
		c, err := client.New(client.Config{BaseURL: baseURL, Network: network, NodeSecret: w.secret, ServerPubKey: e.serverPublic, HTTPClient: hc})
		if err != nil {
			v.require(false, "client: %v", err)
			return restored
		}
		b, err := c.Restore(ctx)
		want := 0
		for _, obj := range objects {
			if len(ledgers[i].mayBeLatest(obj)) > 0 {
				want++
			}
		}
		got := len(b.Files) + len(b.ChannelFiles)
		v.require(err == nil && got == want, "wallet %d: restore gave %d of %d objects: %v", i, got, want, err)
		if err == nil && got == want {
			restored++
		}
	}
	return restored
}
