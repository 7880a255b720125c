package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"ldkbackup/internal/client"
	"ldkbackup/internal/haformation"
)

// Drill 7: the database machine is lost. A pg_auto_failover formation (a
// monitor, a primary and a synchronous secondary on this machine) serves
// one server under persist load; the primary's keeper and PostgreSQL are
// killed with SIGKILL, the monitor promotes the secondary, the old node
// comes back as the new secondary, and it happens again the other way;
// then a planned switchover. Every acknowledged persist must read back
// byte-exact from the survivor, and clients may see only 503s and
// connection errors meanwhile.
const (
	failoverWallets   = 8
	failoverPlaintext = 4 << 10
	// failoverSteady is the load before and after each event.
	failoverSteady = 3 * time.Second
	// promoteBound bounds each wait for the monitor (failover takes about
	// 20-40 s with pg_auto_failover's default health checks).
	promoteBound = 2 * time.Minute
	// latencyPersists is how many persists each of the latency wallets
	// makes, synchronous and asynchronous.
	latencyPersists = 150
	latencyWallets  = 4
	// VSS users beside the wallets, each writing and reading its keys.
	failoverVSSUsers = 4
	failoverVSSKeys  = 4
)

var failoverObjects = []object{{label: "channel_manager"}, monitor(1), monitor(2), monitor(3)}

type failoverEvent struct {
	Event string `json:"event"`
	// PromotedMs is from the event to the monitor naming a settled new
	// primary; SynchronousMs to the formation being synchronous again.
	PromotedMs    float64 `json:"promoted_ms"`
	SynchronousMs float64 `json:"synchronous_again_ms"`
	// LongestWithoutAckMs is the longest time without an acknowledged
	// persist from the last one before the event to the end of its window.
	LongestWithoutAckMs float64 `json:"longest_without_ack_ms"`
	// Answers counts the replies of persists started in the event's
	// window by status ("none": a connection error or timeout).
	Answers map[string]int `json:"answers"`
	start   time.Time
}

type failoverFigures struct {
	Wallets      int             `json:"wallets"`
	Acknowledged int             `json:"acknowledged"`
	Lost         int             `json:"lost"`
	WrongLatest  int             `json:"wrong_latest"`
	Events       []failoverEvent `json:"events"`
	Answers      map[string]int  `json:"answers"`
	// Sync and Async are a 4 KiB persist's latency with the standby in the
	// quorum and out of it, measured one after the other on this formation.
	Sync           latencySummary `json:"persist_synchronous_standby"`
	Async          latencySummary `json:"persist_no_synchronous_standby"`
	Replication    string         `json:"replication_at_start"`
	Integrity      integrity      `json:"integrity"`
	Restored       int            `json:"wallets_restored"`
	ServerSettings []string       `json:"server_settings"`
	LostExamples   []string       `json:"lost_examples,omitempty"`
	// VSS is the VSS users' load beside the wallets': 503s and connection
	// errors allowed, as for the persists.
	VSS *vssFigures `json:"vss"`
}

type failoverRun struct {
	e       *env
	f       *haformation.Formation
	server  *serverProcess
	hc      *http.Client
	wallets []*wallet
	ledgers []*ledger[object]
	vss     *vssLoad

	mu      sync.Mutex
	acks    []time.Time // when each acknowledged persist's reply arrived
	answers []answer
}

type answer struct {
	start  time.Time
	status string
}

func failoverDrill(ctx context.Context, e *env, v *verdict) (any, error) {
	e.log.Info("creating a pg_auto_failover formation", "dir", filepath.Join(e.workDir, "ha"))
	f, err := haformation.Up(ctx, haformation.Options{Dir: filepath.Join(e.workDir, "ha"), AllowInstall: true, Stdout: logWriter{e}})
	if f != nil {
		defer func() {
			if err := f.Destroy(); err != nil {
				e.log.Warn("removing the formation", "error", err)
			}
		}()
	}
	if err != nil {
		return nil, err
	}
	settings := []string{"RETAIN_VERSIONS=1000000"}
	server, err := e.startServer(ctx, serverSpec{name: "failover", dbURL: f.URL(), env: settings})
	if err != nil {
		return nil, err
	}
	r := &failoverRun{e: e, f: f, server: server, hc: newHTTPClient(2 * failoverWallets)}
	fig := &failoverFigures{Wallets: failoverWallets, ServerSettings: settings}
	primary, err := f.Primary(ctx)
	if err != nil {
		return fig, err
	}
	rep, err := haformation.ReplicationOf(ctx, f.NodeURL(primary))
	if err != nil {
		return fig, err
	}
	fig.Replication = rep.String()
	v.require(rep.Synchronous(), "the formation is not synchronous at the start: %s", rep)

	if fig.Sync, fig.Async, err = r.measureLatency(ctx); err != nil {
		return fig, err
	}

	for range failoverWallets {
		w, err := newWallet()
		if err != nil {
			return fig, err
		}
		r.wallets, r.ledgers = append(r.wallets, w), append(r.ledgers, newLedger[object]())
	}
	if r.vss, err = newVSSLoad(r.hc, func() string { return server.BaseURL + "/vss" }, failoverVSSUsers, failoverVSSKeys, failoverPlaintext, nil); err != nil {
		return fig, err
	}
	r.vss.backoff = 100 * time.Millisecond // as the wallets back off
	events, err := r.runLoad(ctx)
	fig.Events = events
	if err != nil {
		return fig, err
	}
	fig.Answers = map[string]int{}
	for _, a := range r.answers {
		fig.Answers[a.status]++
	}
	for status, n := range fig.Answers {
		v.require(status == "200" || status == "503" || status == "none", "%d persists were answered %s (only 200, 503 and connection errors are allowed)", n, status)
	}
	for _, ev := range events {
		v.require(ev.Answers["200"] > 0, "no persist was acknowledged in the window of %q", ev.Event)
	}

	back, err := readBackAll(ctx, r.hc, server.BaseURL, r.wallets, r.ledgers)
	if err != nil {
		return fig, err
	}
	fig.Acknowledged, fig.Lost, fig.WrongLatest, fig.LostExamples = back.Acknowledged, back.Lost, back.WrongLatest, back.Examples
	v.require(fig.Lost == 0, "%d acknowledged persists are not readable with their bytes from the survivor: %v", fig.Lost, back.Examples)
	v.require(fig.WrongLatest == 0, "%d objects hold a latest version nobody sent after the last acknowledged one: %v", fig.WrongLatest, back.Examples)
	v.require(fig.Acknowledged > 0, "no persist was acknowledged")
	fig.VSS = r.vss.figures()
	r.vss.readBack(ctx, fig.VSS)
	fig.VSS.check(v, true)
	for status, n := range fig.VSS.Failed {
		v.require(status == "503" || status == "none", "VSS: %d requests were answered %s (only 503 and connection errors are allowed)", n, status)
	}
	fig.Restored = restoreAll(ctx, r.e, r.server.BaseURL, r.hc, r.wallets, r.ledgers, failoverObjects, v)
	if fig.Integrity, err = checkIntegrity(ctx, f.URL()); err != nil {
		return fig, err
	}
	fig.Integrity.check(v)
	v.require(server.Alive(), "the server process exited during the drill (log: %s)", server.LogPath)
	checkLogForPanics(server, v)
	return fig, nil
}

// runLoad runs the wallets through two failovers and a switchover.
func (r *failoverRun) runLoad(ctx context.Context) ([]failoverEvent, error) {
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
	if !sleepCtx(ctx, failoverSteady) {
		return nil, ctx.Err()
	}
	var events []failoverEvent
	for _, name := range []string{"primary lost (SIGKILL)", "new primary lost (SIGKILL)", "switchover"} {
		ev, err := r.event(ctx, name)
		events = append(events, ev)
		if err != nil {
			return events, err
		}
	}
	if !sleepCtx(ctx, failoverSteady) {
		return events, ctx.Err()
	}
	r.summarise(events, time.Now())
	return events, nil
}

// event loses the primary (or switches over), waits for the new primary,
// brings a lost node back as the secondary and waits until the formation
// is synchronous again.
func (r *failoverRun) event(ctx context.Context, name string) (failoverEvent, error) {
	f := r.f
	ev := failoverEvent{Event: name, start: time.Now()}
	old, err := f.Primary(ctx)
	if err != nil {
		return ev, err
	}
	r.e.log.Info("failover drill", "event", name, "primary", old.Name)
	if name == "switchover" {
		if err := f.Switchover(ctx); err != nil {
			return ev, err
		}
	} else {
		if err := f.Kill(old); err != nil {
			return ev, err
		}
		if err := f.Gone(ctx, old); err != nil {
			return ev, err
		}
	}
	if err := f.WaitState(ctx, promoteBound, "a new primary", func(states []haformation.NodeState) bool {
		return slices.ContainsFunc(states, func(s haformation.NodeState) bool {
			return s.Port != old.Port && s.Writable()
		})
	}); err != nil {
		return ev, err
	}
	ev.PromotedMs = ms(time.Since(ev.start))
	if name != "switchover" {
		// The machine comes back: its keeper rejoins as the new secondary.
		if !sleepCtx(ctx, failoverSteady) {
			return ev, ctx.Err()
		}
		if err := f.Start(ctx, old); err != nil {
			return ev, err
		}
	}
	if err := f.WaitSynchronous(ctx); err != nil {
		return ev, err
	}
	ev.SynchronousMs = ms(time.Since(ev.start))
	if !sleepCtx(ctx, failoverSteady) {
		return ev, ctx.Err()
	}
	return ev, nil
}

// summarise fills each event's figures from the answers and acks seen
// between its start and the next event's (the last: end).
func (r *failoverRun) summarise(events []failoverEvent, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	acks := slices.Clone(r.acks)
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	for i := range events {
		ev := &events[i]
		until := end
		if i+1 < len(events) {
			until = events[i+1].start
		}
		ev.Answers = map[string]int{}
		for _, a := range r.answers {
			if !a.start.Before(ev.start) && a.start.Before(until) {
				ev.Answers[a.status]++
			}
		}
		prev := ev.start
		for _, t := range acks {
			if t.Before(ev.start) {
				prev = t
			}
		}
		var longest time.Duration
		for _, t := range acks {
			if t.After(prev) && t.Before(until) {
				longest = max(longest, t.Sub(prev))
				prev = t
			}
		}
		longest = max(longest, until.Sub(prev))
		ev.LongestWithoutAckMs = ms(longest)
	}
}

// walletLoop persists each object in turn until stop.
func (r *failoverRun) walletLoop(i int, stop <-chan struct{}) {
	w, l := r.wallets[i], r.ledgers[i]
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		body, err := client.Encrypt(w.secret, randomBytes(failoverPlaintext))
		if err != nil {
			panic(err) // only a wrong key length fails, a programming error
		}
		u := bytesUpload(failoverObjects[n%len(failoverObjects)], body)
		start := time.Now()
		res := w.persist(context.Background(), r.hc, r.server.BaseURL, r.e.serverPub, u)
		l.record(u.obj, sentPersist(u, res))
		status := "none"
		if res.status != 0 {
			status = fmt.Sprint(res.status)
		}
		r.mu.Lock()
		r.answers = append(r.answers, answer{start: start, status: status})
		if res.acked {
			r.acks = append(r.acks, time.Now())
		}
		r.mu.Unlock()
		if !res.acked {
			// A client backs off a little instead of spinning on 503s.
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// measureLatency measures a persist with the standby in the replication
// quorum (commit waits for it), then with it out (pg_autoctl set node
// replication-quorum false: the primary's synchronous_standby_names
// empties), then puts it back and waits for the synchronous state.
func (r *failoverRun) measureLatency(ctx context.Context) (sync, async latencySummary, err error) {
	f := r.f
	if sync, err = r.persistMany(ctx); err != nil {
		return
	}
	primary, err := f.Primary(ctx)
	if err != nil {
		return
	}
	standby := f.Nodes[0]
	if standby == primary {
		standby = f.Nodes[1]
	}
	if err = f.SetReplicationQuorum(ctx, standby, false); err != nil {
		return
	}
	if err = waitFor(ctx, promoteBound, func() bool {
		rep, err := haformation.ReplicationOf(ctx, f.NodeURL(primary))
		return err == nil && rep.SynchronousStandbyNames == ""
	}); err != nil {
		err = fmt.Errorf("synchronous_standby_names did not empty after replication-quorum false: %w", err)
		return
	}
	if async, err = r.persistMany(ctx); err != nil {
		return
	}
	if err = f.SetReplicationQuorum(ctx, standby, true); err != nil {
		return
	}
	err = f.WaitSynchronous(ctx)
	return
}

// persistMany runs latencyWallets wallets of latencyPersists persists each.
func (r *failoverRun) persistMany(ctx context.Context) (latencySummary, error) {
	var lat latencies
	var wg sync.WaitGroup
	var failed sync.Map
	for range latencyWallets {
		w, err := newWallet()
		if err != nil {
			return latencySummary{}, err
		}
		wg.Go(func() {
			for n := range latencyPersists {
				u := bytesUpload(failoverObjects[n%len(failoverObjects)], randomBytes(failoverPlaintext))
				res := w.persist(ctx, r.hc, r.server.BaseURL, r.e.serverPub, u)
				if !res.acked {
					failed.Store(w.pubHex, res.reply.String())
					return
				}
				lat.add(res.latency)
			}
		})
	}
	wg.Wait()
	var err error
	failed.Range(func(_, v any) bool { err = fmt.Errorf("latency persist failed: %v", v); return false })
	return lat.summary(), errors.Join(err, ctx.Err())
}

// waitFor polls cond every 100 ms until it holds or limit passes.
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

// logWriter passes what the formation says to the drill's log.
type logWriter struct{ e *env }

func (w logWriter) Write(p []byte) (int, error) {
	w.e.log.Info("formation", "says", string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
