package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/vssauth"
	"ldkbackup/internal/vssclient"
	"ldkbackup/internal/vsspb"
)

// The VSS load the drills run beside their v1 load (issue 15): ldk-node
// users writing their keys and reading each one back, with the same
// promises as the v1 wallets: no acknowledged write lost, failures only as
// 5xx ErrorResponses (or no reply where the drill kills the server), never
// a 500.

// vssDrillStore is every drill user's store.
const vssDrillStore = "drill"

// vssWriter is one ldk-node user. Half the writers put with version -1, as
// ldk-node does; the others with compare-and-swap versions, the protocol's
// other way to write, whose versions must survive the faults too.
type vssWriter struct {
	headers vssclient.HeaderProvider
	cas     bool
	ledger  *ledger[string]
	keys    []string
	// With cas: the version each key has as far as the writer knows, and
	// the keys whose last put got no answer, so the writer must read the
	// key before it writes it again (the put may or may not have applied).
	version map[string]int64
	resync  map[string]bool
}

// vssLoad is the drill's VSS users and what happened to their requests.
type vssLoad struct {
	hc         *http.Client
	base       func() string // the server's /vss URL for the next request
	writers    []*vssWriter
	valueBytes int
	// failFast bounds a failure's answer time; 0: no bound.
	failFast time.Duration
	// backoff is the pause after a failed request, as a client backs off
	// instead of spinning on refusals or a server that is gone.
	backoff time.Duration

	mu       sync.Mutex
	requests int
	ok       int
	acked    int
	failed   map[string]int // by status; "none": no reply
	unclean  int
	stale    int
	// Puts whose answer was lost (5xx, no reply), found applied or not by
	// the read after them.
	unackedApplied, unackedNotApplied int
	examples                          []string
	lat                               latencies
	// outcomes: when each request started and whether it succeeded.
	outcomes []vssOutcome
}

type vssOutcome struct {
	start time.Time
	ok    bool
}

// newVSSLoad makes writers users of keys keys each; forwardedFor, when not
// nil, gives user i an X-Forwarded-For of its own.
func newVSSLoad(hc *http.Client, base func() string, writers, keys, valueBytes int, forwardedFor func(i int) string) (*vssLoad, error) {
	l := &vssLoad{hc: hc, base: base, valueBytes: valueBytes, failed: map[string]int{}, backoff: 20 * time.Millisecond}
	for i := range writers {
		key, err := btcec.NewPrivateKey()
		if err != nil {
			return nil, err
		}
		addr := ""
		if forwardedFor != nil {
			addr = forwardedFor(i)
		}
		w := &vssWriter{headers: signedHeaders(key, addr), cas: i%2 == 1, ledger: newLedger[string](),
			version: map[string]int64{}, resync: map[string]bool{}}
		for j := range keys {
			w.keys = append(w.keys, "monitors/"+strconv.Itoa(j))
		}
		l.writers = append(l.writers, w)
	}
	return l, nil
}

// signedHeaders is ldk-node's signature header, signed fresh for each
// request as vss-client's SigsAuthProvider does.
func signedHeaders(key *btcec.PrivateKey, forwardedFor string) vssclient.HeaderProvider {
	return vssclient.HeaderFunc(func(context.Context, []byte) (http.Header, error) {
		h := http.Header{"Authorization": {vssauth.SignatureHeader(key, time.Now())}}
		if forwardedFor != "" {
			h.Set("X-Forwarded-For", forwardedFor)
		}
		return h, nil
	})
}

func (l *vssLoad) client(w *vssWriter) *vssclient.Client {
	return vssclient.New(l.base(), l.hc, w.headers)
}

// run writes and reads until stop, each writer its keys in turn; requests
// are not cancelled by stop. rounds > 0 stops each writer after that many
// rounds instead.
func (l *vssLoad) run(stop <-chan struct{}, rounds int) {
	var wg sync.WaitGroup
	for _, w := range l.writers {
		wg.Go(func() {
			for n := 0; rounds <= 0 || n < rounds; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if !l.step(w, w.keys[n%len(w.keys)]) {
					time.Sleep(l.backoff)
				}
			}
		})
	}
	wg.Wait()
}

// step writes key (unless the writer must first learn what its last put
// did) and reads it back; false when a request failed.
func (l *vssLoad) step(w *vssWriter, key string) bool {
	if !w.resync[key] && !l.put(w, key) {
		return false
	}
	return l.read(w, key)
}

// put writes a fresh random value to key and records it in the ledger.
func (l *vssLoad) put(w *vssWriter, key string) bool {
	value := randomBytes(l.valueBytes)
	s := sentBody{sum: sha256.Sum256(value), version: 1}
	version := int64(-1) // blind upsert: the key's version becomes 1
	if w.cas {
		version = w.version[key] // 0 for a new key: insert only if absent
		s.version = version + 1
	}
	start := time.Now()
	err := l.client(w).PutObjects(context.Background(), &vsspb.PutObjectRequest{StoreId: vssDrillStore,
		TransactionItems: []*vsspb.KeyValue{{Key: key, Value: value, Version: version}}})
	latency := time.Since(start)
	var vErr *vssclient.Error
	switch {
	case err == nil:
		s.acked = true
		w.version[key] = s.version
	case errors.As(err, &vErr) && vErr.Status < 500:
		s.refused = true
	case w.cas:
		w.resync[key] = true
	}
	w.ledger.record(key, s)
	if s.acked {
		l.mu.Lock()
		l.acked++
		l.mu.Unlock()
	}
	return l.outcome("put "+key, err, latency)
}

// read gets key, which must hold the last acknowledged value or one sent
// after it, at the version that write made (read-your-writes). A writer
// that did not learn whether its last put applied takes what it reads as
// the key's version.
func (l *vssLoad) read(w *vssWriter, key string) bool {
	want := w.ledger.mayBeLatest(key)
	if len(want) == 0 {
		return true // every put refused: nothing to read
	}
	start := time.Now()
	got, err := l.client(w).GetObject(context.Background(), &vsspb.GetObjectRequest{StoreId: vssDrillStore, Key: key})
	latency := time.Since(start)
	if errors.Is(err, vssclient.ErrNoSuchKey) && !w.ledger.anyAcked(key) {
		// Nothing acknowledged, and no unacknowledged put applied.
		w.version[key], w.resync[key] = 0, false
		return l.outcome("get "+key, nil, latency)
	}
	if err != nil {
		return l.outcome("get "+key, err, latency)
	}
	sum := sha256.Sum256(got.Value.Value)
	version, ok := want[sum]
	if !ok || version != got.Value.Version {
		l.mu.Lock()
		l.stale++
		l.outcomes = append(l.outcomes, vssOutcome{start: time.Now().Add(-latency)})
		l.mu.Unlock()
		l.unclear(fmt.Sprintf("get %s: %d bytes at version %d, neither the last acknowledged value nor one sent after it", key, len(got.Value.Value), got.Value.Version), latency)
		return true
	}
	if last, _ := w.ledger.last(key); !last.acked && !last.refused {
		l.mu.Lock()
		if last.sum == sum {
			l.unackedApplied++
		} else {
			l.unackedNotApplied++
		}
		l.mu.Unlock()
	}
	w.version[key], w.resync[key] = version, false
	return l.outcome("get "+key, nil, latency)
}

// outcome counts a request: ok; failed (a 5xx ErrorResponse within
// failFast, or no reply, which each drill judges); or unclean (a 4xx, an
// answer without the protocol header or ErrorResponse, a slow failure).
// It returns whether the request succeeded.
func (l *vssLoad) outcome(what string, err error, latency time.Duration) bool {
	var vErr *vssclient.Error
	l.mu.Lock()
	l.outcomes = append(l.outcomes, vssOutcome{start: time.Now().Add(-latency), ok: err == nil})
	l.mu.Unlock()
	switch {
	case err == nil:
		l.count(func() { l.ok++ }, latency)
	case errors.As(err, &vErr) && vErr.Status >= 500 && (l.failFast == 0 || latency <= l.failFast):
		l.count(func() { l.failed[strconv.Itoa(vErr.Status)]++ }, latency)
	case errors.As(err, &vErr) || errors.Is(err, vssclient.ErrProtocolVersion) || errors.Is(err, vssclient.ErrUndecodable):
		l.unclear(fmt.Sprintf("%s after %s: %v", what, latency.Round(time.Millisecond), err), latency)
	default:
		l.count(func() { l.failed["none"]++ }, latency)
	}
	return err == nil
}

func (l *vssLoad) unclear(detail string, latency time.Duration) {
	l.count(func() {
		l.unclean++
		if len(l.examples) < 5 {
			l.examples = append(l.examples, detail)
		}
	}, latency)
}

func (l *vssLoad) count(f func(), latency time.Duration) {
	l.lat.add(latency)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	f()
}

// since counts the requests started at or after t: ok, and failed (in
// any way).
func (l *vssLoad) since(t time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, o := range l.outcomes {
		switch {
		case o.start.Before(t):
		case o.ok:
			out["ok"]++
		default:
			out["failed"]++
		}
	}
	return out
}

// vssFigures are a drill's VSS figures.
type vssFigures struct {
	Users        int `json:"users"`
	Requests     int `json:"requests"`
	Acknowledged int `json:"acknowledged"`
	// Lost: keys whose last acknowledged value is not what a read gives
	// after the drill (missing, or bytes nobody sent after it);
	// WrongVersion: the right bytes at another version than their put made.
	Lost         int `json:"lost"`
	WrongVersion int `json:"wrong_version"`
	// Puts whose answer was lost and which the read after them found
	// applied, or not: both are allowed.
	UnackedApplied    int `json:"unacked_applied"`
	UnackedNotApplied int `json:"unacked_not_applied"`
	// TailWindow counts the requests after the last fault, where the drill
	// has such a window: all must succeed.
	TailWindow     map[string]int `json:"tail_window,omitempty"`
	Failed         map[string]int `json:"failed"`
	Unclean        int            `json:"unclean"`
	StaleReads     int            `json:"stale_reads"`
	Latency        latencySummary `json:"latency"`
	UncleanExample []string       `json:"unclean_examples,omitempty"`
	LostExamples   []string       `json:"lost_examples,omitempty"`
}

func (l *vssLoad) figures() *vssFigures {
	l.mu.Lock()
	defer l.mu.Unlock()
	failed := make(map[string]int, len(l.failed))
	for k, n := range l.failed {
		failed[k] = n
	}
	return &vssFigures{
		Users: len(l.writers), Requests: l.requests, Acknowledged: l.acked, Failed: failed,
		Unclean: l.unclean, StaleReads: l.stale, Latency: l.lat.summary(),
		UnackedApplied: l.unackedApplied, UnackedNotApplied: l.unackedNotApplied,
		UncleanExample: append([]string(nil), l.examples...),
	}
}

// readBack reads every key of every writer after the drill and checks it
// against the ledger: the last acknowledged value or one sent after it,
// at the version that put made.
func (l *vssLoad) readBack(ctx context.Context, f *vssFigures) {
	for _, w := range l.writers {
		c := l.client(w)
		for _, key := range w.ledger.keys() {
			want := w.ledger.mayBeLatest(key)
			got, err := c.GetObject(ctx, &vsspb.GetObjectRequest{StoreId: vssDrillStore, Key: key})
			if errors.Is(err, vssclient.ErrNoSuchKey) && !w.ledger.anyAcked(key) {
				continue
			}
			if err != nil {
				f.Lost++
				f.lostExample("%s: %v", key, err)
				continue
			}
			version, ok := want[sha256.Sum256(got.Value.Value)]
			switch {
			case !ok:
				f.Lost++
				f.lostExample("%s: %d bytes at version %d, not the last acknowledged value nor one sent after it", key, len(got.Value.Value), got.Value.Version)
			case version != got.Value.Version:
				f.WrongVersion++
				f.lostExample("%s: version %d, its put made %d", key, got.Value.Version, version)
			}
		}
	}
}

func (f *vssFigures) lostExample(format string, args ...any) {
	if len(f.LostExamples) < 5 {
		f.LostExamples = append(f.LostExamples, fmt.Sprintf(format, args...))
	}
}

// check turns the figures into verdicts. noReplyOK: the drill kills the
// server, so requests without an answer are expected.
func (f *vssFigures) check(v *verdict, noReplyOK bool) {
	v.require(f.Acknowledged > 0, "VSS: no put was acknowledged")
	v.require(f.Lost == 0, "VSS: %d keys lost their last acknowledged value: %v", f.Lost, f.LostExamples)
	v.require(f.WrongVersion == 0, "VSS: %d keys hold their value at another version than its put made: %v", f.WrongVersion, f.LostExamples)
	v.require(f.Unclean == 0, "VSS: %d requests failed uncleanly, e.g. %v", f.Unclean, f.UncleanExample)
	v.require(f.StaleReads == 0, "VSS: %d reads returned a value older than the last acknowledged put", f.StaleReads)
	v.require(f.Failed["500"] == 0, "VSS: %d requests answered 500", f.Failed["500"])
	v.require(noReplyOK || f.Failed["none"] == 0, "VSS: %d requests got no answer", f.Failed["none"])
}

// vssHeadline sums the figures up for a drill's line of the table; "" for
// a drill without a VSS load.
func vssHeadline(f *vssFigures) string {
	if f == nil {
		return ""
	}
	return fmt.Sprintf("; VSS: %s puts acknowledged, %d lost, %d wrong versions, %s, %d unclean, %d stale reads",
		thousands(f.Acknowledged), f.Lost, f.WrongVersion, failedLine(f.Failed), f.Unclean, f.StaleReads)
}

func failedLine(m map[string]int) string {
	n := 0
	for _, c := range m {
		n += c
	}
	if n == 0 {
		return "0 failed"
	}
	return fmt.Sprintf("%s failed (%s)", thousands(n), statuses(m))
}
