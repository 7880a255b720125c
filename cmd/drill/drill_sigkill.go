package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Drill 2: the server is killed with SIGKILL while large uploads are on
// the wire and in the database, then started again on the same database.
const (
	killWallets   = 8
	killBodyBytes = 8 << 20
	// killPace slows each upload to 32 MiB/s (250 ms for 8 MiB on the
	// wire), so that a kill finds some uploads mid-body and others in the
	// database, as on a real network.
	killPace = 32 << 20
	// afterRestartBound is how soon a persist must succeed once the server
	// is back: a transaction the killed server left open would hold the
	// object's row lock and stall it.
	afterRestartBound = 10 * time.Second
	// VSS users beside the uploads, each writing and reading its keys.
	killVSSUsers      = 4
	killVSSKeys       = 2
	killVSSValueBytes = 64 << 10
)

// killDelays are how long the uploads run before each of the kills: the
// first while every first body is still on the wire, the others at odd
// moments when uploads are in every stage.
var killDelays = []time.Duration{200 * time.Millisecond, 1700 * time.Millisecond, 2900 * time.Millisecond, 4100 * time.Millisecond}

var killObjects = []object{{label: "channel_manager"}, monitor(1)}

// upload phases of a wallet, seen at the kill.
const (
	phaseIdle int32 = iota
	phaseBody
	phaseAwaitingReply
)

type killRound struct {
	KillAfterMs float64 `json:"kill_after_ms"`
	// MidBody uploads were still sending their body at the kill;
	// AwaitingReply had sent it and were waiting (in the database).
	MidBody       int     `json:"mid_body"`
	AwaitingReply int     `json:"awaiting_reply"`
	Acknowledged  int     `json:"acknowledged"`
	RestartMs     float64 `json:"restart_to_ready_ms"`
}

type killFigures struct {
	Wallets      int         `json:"wallets"`
	BodyBytes    int         `json:"body_bytes"`
	Rounds       []killRound `json:"rounds"`
	Acknowledged int         `json:"acknowledged"`
	Lost         int         `json:"lost"`
	WrongLatest  int         `json:"wrong_latest"`
	// UnackedCommitted counts uploads cut off by a kill that were committed
	// anyway (whole: the integrity check covers their bytes). Allowed: the
	// reply was lost, and the app sends the state again.
	UnackedCommitted int            `json:"unacked_committed"`
	AfterRestart     latencySummary `json:"persist_after_restart"`
	LostExamples     []string       `json:"lost_examples,omitempty"`
	Integrity        integrity      `json:"integrity"`
	ServerSettings   []string       `json:"server_settings"`
	// VSS is the VSS users' load beside the uploads: killed with them.
	VSS *vssFigures `json:"vss"`
}

// killRun is the state of one server-sigkill drill.
type killRun struct {
	e       *env
	server  *serverProcess
	hc      *http.Client
	wallets []*wallet
	ledgers []*ledger[object]
	phases  []atomic.Int32
	base    []byte // the bytes every body shares after its random prefix
	vss     *vssLoad
}

func sigkillDrill(ctx context.Context, e *env, v *verdict) (any, error) {
	dbURL, err := e.database(ctx, "drill_server_sigkill")
	if err != nil {
		return nil, err
	}
	settings := []string{"RETAIN_VERSIONS=1000000"}
	server, err := e.startServer(ctx, serverSpec{name: "server-sigkill", dbURL: dbURL, env: settings})
	if err != nil {
		return nil, err
	}
	r := &killRun{e: e, server: server, hc: newHTTPClient(2 * killWallets), phases: make([]atomic.Int32, killWallets), base: randomBytes(killBodyBytes)}
	for range killWallets {
		w, err := newWallet()
		if err != nil {
			return nil, err
		}
		r.wallets, r.ledgers = append(r.wallets, w), append(r.ledgers, newLedger[object]())
	}
	vssBase := func() string { return server.BaseURL + "/vss" }
	if r.vss, err = newVSSLoad(r.hc, vssBase, killVSSUsers, killVSSKeys, killVSSValueBytes, nil); err != nil {
		return nil, err
	}
	f := &killFigures{Wallets: killWallets, BodyBytes: killBodyBytes, ServerSettings: settings}
	for _, delay := range killDelays {
		round, err := r.round(ctx, delay)
		if err != nil {
			return f, err
		}
		f.Rounds = append(f.Rounds, round)
	}
	if f.AfterRestart, err = r.persistEachObject(ctx, v); err != nil {
		return f, err
	}
	back, err := readBackAll(ctx, r.hc, server.BaseURL, r.wallets, r.ledgers)
	if err != nil {
		return f, err
	}
	f.Acknowledged, f.Lost, f.WrongLatest, f.LostExamples = back.Acknowledged, back.Lost, back.WrongLatest, back.Examples
	v.require(f.Lost == 0, "%d acknowledged persists are not readable with their bytes: %v", f.Lost, back.Examples)
	v.require(f.WrongLatest == 0, "%d objects hold a latest version nobody sent: %v", f.WrongLatest, back.Examples)
	f.VSS = r.vss.figures()
	r.vss.readBack(ctx, f.VSS)
	f.VSS.check(v, true)
	if f.UnackedCommitted, err = r.unackedCommitted(ctx, dbURL); err != nil {
		return f, err
	}
	if f.Integrity, err = checkIntegrity(ctx, dbURL); err != nil {
		return f, err
	}
	f.Integrity.check(v)
	// The drill must have done what it says: killed uploads in both stages.
	midBody, awaiting := 0, 0
	for _, round := range f.Rounds {
		midBody += round.MidBody
		awaiting += round.AwaitingReply
	}
	v.require(midBody > 0 && awaiting > 0, "the kills found %d uploads mid-body and %d awaiting their reply; the drill needs both", midBody, awaiting)
	checkLogForPanics(server, v)
	return f, nil
}

// round runs the uploads for delay, kills the server, and starts it again.
func (r *killRun) round(ctx context.Context, delay time.Duration) (killRound, error) {
	round := killRound{KillAfterMs: ms(delay)}
	before := r.ackedTotal()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range r.wallets {
		wg.Go(func() { r.uploadLoop(i, stop) })
	}
	// The VSS users run until the kill, which ends their requests in flight.
	wg.Go(func() { r.vss.run(stop, 0) })
	if !sleepCtx(ctx, delay) {
		close(stop)
		wg.Wait()
		return round, ctx.Err()
	}
	close(stop)
	r.e.log.Info("killing the server (SIGKILL)", "uploads_for", delay)
	for i := range r.phases {
		switch r.phases[i].Load() {
		case phaseBody:
			round.MidBody++
		case phaseAwaitingReply:
			round.AwaitingReply++
		}
	}
	r.server.Kill()
	wg.Wait()
	round.Acknowledged = r.ackedTotal() - before

	start := time.Now()
	if err := r.server.Restart(ctx); err != nil {
		return round, err
	}
	round.RestartMs = ms(time.Since(start))
	return round, nil
}

// uploadLoop persists 8 MiB bodies to the wallet's objects in turn until
// stop; the kill ends the one in flight.
func (r *killRun) uploadLoop(i int, stop <-chan struct{}) {
	w, l := r.wallets[i], r.ledgers[i]
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		u := r.largeUpload(killObjects[n%len(killObjects)], &r.phases[i])
		r.phases[i].Store(phaseBody)
		res := w.persist(context.Background(), r.hc, r.server.BaseURL, r.e.serverPub, u)
		r.phases[i].Store(phaseIdle)
		l.record(u.obj, sentPersist(u, res))
	}
}

// largeUpload is a body of killBodyBytes: a random prefix (so no two are
// alike) and the shared bytes, streamed at killPace. The phase turns to
// "awaiting reply" once the last byte is handed to the connection.
func (r *killRun) largeUpload(obj object, phase *atomic.Int32) upload {
	prefix := make([]byte, 32)
	_, _ = rand.Read(prefix)
	rest := r.base[len(prefix):]
	h := sha256.New()
	h.Write(prefix)
	h.Write(rest)
	u := upload{obj: obj, size: killBodyBytes}
	h.Sum(u.sum[:0])
	u.open = func() io.Reader {
		return &pacedReader{
			r:      io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(rest)),
			size:   killBodyBytes,
			rate:   killPace,
			onDone: func() { phase.Store(phaseAwaitingReply) },
		}
	}
	return u
}

// persistEachObject persists a small body to every object once the server
// is back, and fails the drill when one does not succeed promptly.
func (r *killRun) persistEachObject(ctx context.Context, v *verdict) (latencySummary, error) {
	var lat latencies
	for i, w := range r.wallets {
		for _, obj := range killObjects {
			u := bytesUpload(obj, randomBytes(4<<10))
			res := w.persist(ctx, r.hc, r.server.BaseURL, r.e.serverPub, u)
			r.ledgers[i].record(u.obj, sentPersist(u, res))
			lat.add(res.latency)
			v.require(res.acked && res.latency <= afterRestartBound, "persist of %s after the last restart: %s", obj, res.reply)
		}
	}
	return lat.summary(), ctx.Err()
}

func (r *killRun) ackedTotal() int {
	n := 0
	for _, l := range r.ledgers {
		n += l.ackedCount()
	}
	return n
}

// unackedCommitted counts bodies sent without an acknowledgement that the
// database holds anyway.
func (r *killRun) unackedCommitted(ctx context.Context, dbURL string) (int, error) {
	var sums [][]byte
	for _, l := range r.ledgers {
		l.mu.Lock()
		for _, bodies := range l.sent {
			for _, s := range bodies {
				if !s.acked {
					sums = append(sums, bytes.Clone(s.sum[:]))
				}
			}
		}
		l.mu.Unlock()
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM object_versions WHERE sha256 = ANY($1)`, sums).Scan(&n)
	return n, err
}

// pacedReader hands out r's size bytes no faster than rate bytes a second,
// and calls onDone once the last one is out.
type pacedReader struct {
	r      io.Reader
	size   int64
	rate   int64
	onDone func()
	start  time.Time
	n      int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	const chunk = 64 << 10
	if len(b) > chunk {
		b = b[:chunk]
	}
	due := p.start.Add(time.Duration(float64(p.n) / float64(p.rate) * float64(time.Second)))
	time.Sleep(time.Until(due))
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n == p.size && p.onDone != nil {
		p.onDone()
		p.onDone = nil
	}
	return n, err
}
