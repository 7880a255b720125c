package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"ldkbackup/internal/client"
)

// Drill 1: PostgreSQL is restarted and crashed under a steady load of 16
// wallets persisting and reading.
const (
	restartWallets = 16
	// restartPlaintext is a channel monitor's size, give or take.
	restartPlaintext = 4 << 10
	// failFastBound is how soon a request must fail while the database is
	// away: the server's pool gives up connecting after 5 s, plus a second
	// for everything else. requestTimeout (15 s) is what counts as a hang.
	failFastBound = 6 * time.Second
	// steadyPeriod separates the outages: long enough to see the server
	// serve normally again.
	steadyPeriod = 4 * time.Second
	// outageHold keeps the database down in the stop/start outages, so
	// that hundreds of requests land in the outage.
	outageHold = 3 * time.Second
	// VSS users beside the wallets, each writing and reading its keys.
	restartVSSUsers = 8
	restartVSSKeys  = 4
)

// restartObjects are each wallet's objects: a channel manager and three
// channel monitors, as a small wallet has.
var restartObjects = []object{{label: "channel_manager"}, monitor(1), monitor(2), monitor(3)}

// outcome classes of one request.
const (
	outcomeOK = iota
	outcomeCleanFailure
	outcomeUnclean
)

// request is one request (or login) made during the drill.
type request struct {
	start   time.Time
	latency time.Duration
	class   int
	status  int
	detail  string // for unclean ones
}

// restartRun is the state of one pg-restart drill.
type restartRun struct {
	e       *env
	server  *serverProcess
	hc      *http.Client
	wallets []*wallet
	ledgers []*ledger[object]
	vss     *vssLoad

	mu         sync.Mutex
	requests   []request
	staleReads int
}

type outageEvent struct {
	Event string `json:"event"`
	// PgCtlMs is how long pg_ctl took (with the hold for stop/start).
	PgCtlMs float64 `json:"pg_ctl_ms"`
	// Failed counts requests started from the event until the next one.
	Failed int `json:"failed"`
	// RecoveredMs is from PostgreSQL accepting connections again to the
	// end of the first successful request sent after that.
	RecoveredMs float64 `json:"recovered_ms"`
	start, up   time.Time
}

type restartFigures struct {
	Wallets       int `json:"wallets"`
	Acknowledged  int `json:"acknowledged"`
	Lost          int `json:"lost"`
	FailedCleanly int `json:"failed_cleanly"`
	// Unclean requests failed any other way: no reply, a 4xx, a body that
	// is not {"error": ...}, slower than failFastBound, or stale bytes.
	Unclean        int            `json:"unclean"`
	MaxErrorMs     float64        `json:"max_error_latency_ms"`
	ErrorBoundMs   float64        `json:"error_bound_ms"`
	StaleReads     int            `json:"stale_reads"`
	WrongLatest    int            `json:"wrong_latest"`
	Events         []outageEvent  `json:"events"`
	Requests       int            `json:"requests"`
	FailedStatuses map[string]int `json:"failed_statuses"`
	Latency        latencySummary `json:"latency"`
	// TailWindow counts the outcomes of the last steadyPeriod, after the
	// last outage.
	TailWindow      map[string]int `json:"tail_window"`
	Restored        int            `json:"wallets_restored"`
	Integrity       integrity      `json:"integrity"`
	ServerSettings  []string       `json:"server_settings"`
	UncleanExamples []string       `json:"unclean_examples,omitempty"`
	LostExamples    []string       `json:"lost_examples,omitempty"`
	// VSS is the VSS users' load beside the wallets', held to the same
	// promises.
	VSS *vssFigures `json:"vss"`
}

func pgRestartDrill(ctx context.Context, e *env, v *verdict) (any, error) {
	dbURL, err := e.database(ctx, "drill_pg_restart")
	if err != nil {
		return nil, err
	}
	// Every version's bytes are kept, so every acknowledged version can be
	// read back by number.
	settings := []string{"RETAIN_VERSIONS=1000000"}
	server, err := e.startServer(ctx, serverSpec{name: "pg-restart", dbURL: dbURL, env: settings})
	if err != nil {
		return nil, err
	}
	r := &restartRun{e: e, server: server, hc: newHTTPClient(2 * restartWallets)}
	for range restartWallets {
		w, err := newWallet()
		if err != nil {
			return nil, err
		}
		if _, err := w.login(ctx, r.hc, server.BaseURL); err != nil {
			return nil, err
		}
		r.wallets, r.ledgers = append(r.wallets, w), append(r.ledgers, newLedger[object]())
	}
	vssBase := func() string { return server.BaseURL + "/vss" }
	if r.vss, err = newVSSLoad(r.hc, vssBase, restartVSSUsers, restartVSSKeys, restartPlaintext, nil); err != nil {
		return nil, err
	}
	r.vss.failFast = failFastBound

	events, tailStart, err := r.runLoad(ctx)
	if err != nil {
		return nil, err
	}
	f := r.figures(events, tailStart)
	f.ServerSettings = settings
	r.check(f, v)

	back, err := readBackAll(ctx, r.hc, server.BaseURL, r.wallets, r.ledgers)
	if err != nil {
		return f, err
	}
	f.Acknowledged, f.Lost, f.WrongLatest, f.LostExamples = back.Acknowledged, back.Lost, back.WrongLatest, back.Examples
	v.require(f.Lost == 0, "%d acknowledged persists are not readable with their bytes: %v", f.Lost, back.Examples)
	v.require(f.WrongLatest == 0, "%d objects hold a latest version nobody sent after the last acknowledged one: %v", f.WrongLatest, back.Examples)
	v.require(f.Acknowledged > 0, "no persist was acknowledged")

	f.VSS = r.vss.figures()
	f.VSS.TailWindow = r.vss.since(tailStart)
	v.require(f.VSS.TailWindow["ok"] > 0 && f.VSS.TailWindow["failed"] == 0,
		"VSS: the server did not serve normally in the last %s: %v", steadyPeriod, f.VSS.TailWindow)
	r.vss.readBack(ctx, f.VSS)
	f.VSS.check(v, false)

	f.Restored = restoreAll(ctx, r.e, r.server.BaseURL, r.hc, r.wallets, r.ledgers, restartObjects, v)
	if f.Integrity, err = checkIntegrity(ctx, dbURL); err != nil {
		return f, err
	}
	f.Integrity.check(v)
	v.require(server.Alive(), "the server process exited during the drill (log: %s)", server.LogPath)
	checkLogForPanics(server, v)
	noteOther5xx(server, f.FailedStatuses, v)
	return f, nil
}

// runLoad runs the wallets while PostgreSQL goes through its outages, and
// returns the outages and when the final steady period began.
func (r *restartRun) runLoad(ctx context.Context) ([]outageEvent, time.Time, error) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range r.wallets {
		wg.Go(func() { r.walletLoop(i, stop) })
	}
	wg.Go(func() { r.vss.run(stop, 0) })
	defer func() {
		close(stop)
		wg.Wait()
	}()

	pg := r.e.pg
	steps := []struct {
		name string
		do   func(context.Context) error
	}{
		{"pg_ctl restart -m fast", func(ctx context.Context) error { return pg.restart(ctx, "fast") }},
		{"pg_ctl restart -m immediate", func(ctx context.Context) error { return pg.restart(ctx, "immediate") }},
		{"stop -m fast, 3 s down, start", func(ctx context.Context) error { return stopHoldStart(ctx, pg, "fast") }},
		{"stop -m immediate, 3 s down, start", func(ctx context.Context) error { return stopHoldStart(ctx, pg, "immediate") }},
	}
	var events []outageEvent
	if !sleepCtx(ctx, steadyPeriod) {
		return nil, time.Time{}, ctx.Err()
	}
	for _, s := range steps {
		r.e.log.Info("PostgreSQL outage", "event", s.name)
		ev := outageEvent{Event: s.name, start: time.Now()}
		if err := s.do(ctx); err != nil {
			return nil, time.Time{}, err
		}
		ev.up = time.Now()
		ev.PgCtlMs = ms(ev.up.Sub(ev.start))
		events = append(events, ev)
		if !sleepCtx(ctx, steadyPeriod) {
			return nil, time.Time{}, ctx.Err()
		}
	}
	// The tail: the server must serve as before, without a restart.
	tailStart := time.Now()
	if !sleepCtx(ctx, steadyPeriod) {
		return nil, time.Time{}, ctx.Err()
	}
	return events, tailStart, nil
}

func stopHoldStart(ctx context.Context, pg *cluster, mode string) error {
	if err := pg.stop(ctx, mode); err != nil {
		return err
	}
	sleepCtx(ctx, outageHold)
	return pg.start(ctx)
}

// walletLoop persists each object in turn, reads one back after every
// persist, and logs in again now and then, until stop. Requests are not
// cancelled by stop: each ends on its own (or at requestTimeout).
func (r *restartRun) walletLoop(i int, stop <-chan struct{}) {
	w, l := r.wallets[i], r.ledgers[i]
	ctx := context.Background()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		r.persist(ctx, w, l, restartObjects[n%len(restartObjects)])
		r.read(ctx, w, l, restartObjects[rand.IntN(len(restartObjects))])
		if n%25 == 24 {
			r.login(ctx, w)
		}
	}
}

func (r *restartRun) persist(ctx context.Context, w *wallet, l *ledger[object], obj object) {
	body, err := client.Encrypt(w.secret, randomBytes(restartPlaintext))
	if err != nil {
		panic(err) // only a wrong key length fails, a programming error
	}
	u := bytesUpload(obj, body)
	res := w.persist(ctx, r.hc, r.server.BaseURL, r.e.serverPub, u)
	l.record(u.obj, sentPersist(u, res))
	if res.acked {
		r.add(res.reply, outcomeOK, "")
		return
	}
	r.addFailure("persist "+obj.String(), res.reply)
}

// read retrieves obj's latest version, which must be the last acknowledged
// body or one sent after it (read-your-writes across the outages).
func (r *restartRun) read(ctx context.Context, w *wallet, l *ledger[object], obj object) {
	want := l.mayBeLatest(obj)
	if len(want) == 0 {
		return // nothing sent yet
	}
	got := w.retrieve(ctx, r.hc, r.server.BaseURL, obj, 0)
	_, wanted := want[sha256.Sum256(got.body)]
	switch {
	case got.status == http.StatusOK && wanted:
		r.add(got, outcomeOK, "")
	case got.status == http.StatusOK:
		r.mu.Lock()
		r.staleReads++
		r.mu.Unlock()
		r.add(got, outcomeUnclean, fmt.Sprintf("retrieve %s: 200 with bytes that are not the latest acknowledged", obj))
	case got.status == http.StatusNotFound && !l.anyAcked(obj):
		r.add(got, outcomeOK, "") // nothing acknowledged yet
	default:
		r.addFailure("retrieve "+obj.String(), got)
	}
}

func (r *restartRun) login(ctx context.Context, w *wallet) {
	last, err := w.login(ctx, r.hc, r.server.BaseURL)
	if err == nil {
		r.add(last, outcomeOK, "")
		return
	}
	r.addFailure("login", last)
}

// addFailure classifies a failed request: clean when it is a 5xx with a
// JSON {"error": ...} body that came within failFastBound.
func (r *restartRun) addFailure(what string, got reply) {
	if got.status >= 500 && got.jsonError() && got.latency <= failFastBound {
		r.add(got, outcomeCleanFailure, "")
		return
	}
	r.add(got, outcomeUnclean, what+": "+got.String())
}

func (r *restartRun) add(got reply, class int, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, request{
		start: time.Now().Add(-got.latency), latency: got.latency, class: class, status: got.status, detail: detail,
	})
}

// figures sums the requests up, per outage and overall.
func (r *restartRun) figures(events []outageEvent, tailStart time.Time) *restartFigures {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := &restartFigures{
		Wallets:        len(r.wallets),
		Requests:       len(r.requests),
		FailedStatuses: map[string]int{},
		TailWindow:     map[string]int{},
		StaleReads:     r.staleReads,
		ErrorBoundMs:   ms(failFastBound),
	}
	var all latencies
	for _, q := range r.requests {
		all.add(q.latency)
		if q.class != outcomeOK {
			f.MaxErrorMs = max(f.MaxErrorMs, ms(q.latency))
		}
		switch q.class {
		case outcomeCleanFailure:
			f.FailedCleanly++
			f.FailedStatuses[fmt.Sprint(q.status)]++
		case outcomeUnclean:
			f.Unclean++
			if len(f.UncleanExamples) < 5 {
				f.UncleanExamples = append(f.UncleanExamples, q.detail)
			}
		}
		if !q.start.Before(tailStart) {
			f.TailWindow[[]string{"ok", "failed_cleanly", "unclean"}[q.class]]++
		}
	}
	f.Latency = all.summary()
	for i := range events {
		ev := &events[i]
		end := tailStart
		if i+1 < len(events) {
			end = events[i+1].start
		}
		recovered := time.Time{}
		for _, q := range r.requests {
			if q.start.Before(ev.start) || !q.start.Before(end) {
				continue
			}
			if q.class != outcomeOK {
				ev.Failed++
			}
			if q.class == outcomeOK && !q.start.Before(ev.up) && (recovered.IsZero() || q.start.Add(q.latency).Before(recovered)) {
				recovered = q.start.Add(q.latency)
			}
		}
		if !recovered.IsZero() {
			ev.RecoveredMs = ms(recovered.Sub(ev.up))
		} else {
			ev.RecoveredMs = -1
		}
	}
	f.Events = events
	return f
}

// check turns the figures of the load into verdicts; read-back and
// integrity are checked after.
func (r *restartRun) check(f *restartFigures, v *verdict) {
	v.require(f.Unclean == 0, "%d requests did not fail cleanly (a 5xx with a JSON error within %s), e.g. %v", f.Unclean, failFastBound, f.UncleanExamples)
	v.require(f.StaleReads == 0, "%d reads returned bytes older than the last acknowledged persist", f.StaleReads)
	for _, ev := range f.Events {
		v.require(ev.RecoveredMs >= 0, "no persist succeeded after %q", ev.Event)
	}
	v.require(f.TailWindow["ok"] > 0 && f.TailWindow["failed_cleanly"]+f.TailWindow["unclean"] == 0,
		"the server did not serve normally in the last %s: %v", steadyPeriod, f.TailWindow)
}
