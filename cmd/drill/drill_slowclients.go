package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Drill 4, first half: 200 connections trickle persist bodies a few bytes a
// second while 8 wallets persist normally.
const (
	tricklers       = 200
	trickleBytes    = 4           // sent every trickleInterval
	trickleInterval = time.Second // so 4 bytes a second per connection
	// trickleDeclared is what each trickler declares in Content-Length in
	// the first phase: a channel monitor's size.
	trickleDeclared   = 64 << 10
	normalWalletCount = 8
	normalBodyBytes   = 4 << 10
	baselinePeriod    = 5 * time.Second
	// measurePeriod is how long normal persists are measured while the
	// tricklers hold their connections; it is longer than IN_FLIGHT_WAIT
	// (10 s), so a persist stuck waiting for memory shows up as a 503.
	measurePeriod = 15 * time.Second
	// slowReadTimeout is READ_TIMEOUT for this drill (default 5m): long
	// enough for a channel manager over a poor mobile link, short enough to
	// see the server cut the tricklers off within the drill.
	slowReadTimeout = 30 * time.Second
	// normalP99Bound is what "does not stop others" means here: every
	// normal persist succeeds, 99% of them within a second.
	normalP99Bound = time.Second
	afterCutPeriod = 2 * time.Second
)

type slowFigures struct {
	ServerSettings []string       `json:"server_settings"`
	Baseline       normalLoad     `json:"baseline"`
	Phases         []tricklePhase `json:"phases"`
}

// normalLoad is what the 8 ordinary wallets saw.
type normalLoad struct {
	Sent     int            `json:"sent"`
	Acked    int            `json:"acked"`
	Statuses map[string]int `json:"statuses"`
	Latency  latencySummary `json:"latency"`
}

type tricklePhase struct {
	Name string `json:"name"`
	// Declared is each trickler's Content-Length; 0 for chunked bodies,
	// for which the server reserves MAX_BODY_BYTES.
	Declared  int        `json:"declared_bytes"`
	Tricklers int        `json:"tricklers"`
	Connected int        `json:"connected"`
	Normal    normalLoad `json:"normal_persists"`
	// AfterCut is normal persists once the server has cut every trickler
	// off: the memory they held must be free again.
	AfterCut   normalLoad `json:"normal_persists_after_cut"`
	Answered   statusMap  `json:"tricklers_answered"`
	AnsweredAt struct {
		P50 float64 `json:"p50_s"`
		Max float64 `json:"max_s"`
	} `json:"tricklers_answered_after"`
	// Open counts tricklers the server had neither answered nor closed at
	// the end of the phase (READ_TIMEOUT + 5 s after they connected).
	Open int `json:"still_open_at_end"`
}

type statusMap map[string]int

// trickleSpec is one phase: how many connections trickle, declaring what.
type trickleSpec struct {
	name  string
	count int
	// declared is the Content-Length sent; 0 sends a chunked body, for
	// which the server must assume the largest allowed body.
	declared int
}

var trickleSpecs = []trickleSpec{
	{"declared 64 KiB bodies", tricklers, trickleDeclared},
	// As many as IN_FLIGHT_BYTES / MAX_BODY_BYTES (256 MiB / 32 MiB) at the
	// largest declared length: is a handful of slow uploads enough?
	{"declared 32 MiB bodies", 8, 32 << 20},
	{"chunked bodies (no Content-Length)", tricklers, 0},
}

func slowClientsDrill(ctx context.Context, e *env, v *verdict) (any, error) {
	dbURL, err := e.database(ctx, "drill_slow_clients")
	if err != nil {
		return nil, err
	}
	settings := []string{"READ_HEADER_TIMEOUT=5s", "READ_TIMEOUT=" + slowReadTimeout.String()}
	server, err := e.startServer(ctx, serverSpec{name: "slow-clients", dbURL: dbURL, env: settings})
	if err != nil {
		return nil, err
	}
	load, err := newNormalWallets(e, server)
	if err != nil {
		return nil, err
	}
	f := &slowFigures{ServerSettings: settings}
	f.Baseline = load.run(ctx, baselinePeriod)
	v.require(f.Baseline.Acked == f.Baseline.Sent, "baseline: %d of %d persists failed without any trickler: %v", f.Baseline.Sent-f.Baseline.Acked, f.Baseline.Sent, f.Baseline.Statuses)

	for _, spec := range trickleSpecs {
		e.log.Info("tricklers connecting", "phase", spec.name, "count", spec.count)
		phase, err := runTricklePhase(ctx, server, load, spec)
		if err != nil {
			return f, err
		}
		f.Phases = append(f.Phases, phase)
		n := phase.Normal
		v.require(n.Acked == n.Sent && n.Sent > 0,
			"%d tricklers with %s: %d of %d normal persists failed (%v, p50 %.0f ms)", phase.Connected, spec.name, n.Sent-n.Acked, n.Sent, n.Statuses, n.Latency.P50)
		v.require(n.Latency.P99 <= ms(normalP99Bound),
			"%d tricklers with %s: normal persists' p99 %.0f ms is over %s", phase.Connected, spec.name, n.Latency.P99, normalP99Bound)
		v.require(phase.Open == 0, "%d tricklers were still connected %s after READ_TIMEOUT", phase.Open, 5*time.Second)
		a := phase.AfterCut
		v.require(a.Acked == a.Sent && a.Sent > 0, "after the tricklers with %s were cut off: %d of %d normal persists failed (%v)", spec.name, a.Sent-a.Acked, a.Sent, a.Statuses)
	}
	v.require(server.Alive(), "the server exited (log: %s)", server.LogPath)
	checkLogForPanics(server, v)
	return f, nil
}

// runTricklePhase connects the tricklers, measures normal persists while
// they trickle, then waits until READ_TIMEOUT has passed for all of them.
func runTricklePhase(ctx context.Context, server *serverProcess, load *normalWallets, spec trickleSpec) (tricklePhase, error) {
	phase := tricklePhase{Name: spec.name, Declared: spec.declared, Tricklers: spec.count, Answered: statusMap{}}
	stop := make(chan struct{})
	results := make(chan trickleResult, spec.count)
	start := time.Now()
	var wg sync.WaitGroup
	for range spec.count {
		w, err := newWallet()
		if err != nil {
			return phase, err
		}
		wg.Go(func() { results <- trickle(server, w, spec.declared, stop) })
	}
	// Let every trickler connect and send its headers first.
	if !sleepCtx(ctx, 2*time.Second) {
		close(stop)
		return phase, ctx.Err()
	}
	phase.Normal = load.run(ctx, measurePeriod)
	sleepCtx(ctx, time.Until(start.Add(slowReadTimeout+5*time.Second)))
	close(stop)
	wg.Wait()
	close(results)
	phase.AfterCut = load.run(ctx, afterCutPeriod)

	var answeredAt latencies
	for r := range results {
		if r.connected {
			phase.Connected++
		}
		switch {
		case r.status != 0:
			phase.Answered[strconv.Itoa(r.status)]++
			answeredAt.add(r.answeredAfter)
		case r.closedByServer:
			phase.Answered["closed"]++
			answeredAt.add(r.answeredAfter)
		default:
			phase.Open++
		}
	}
	s := answeredAt.summary()
	phase.AnsweredAt.P50, phase.AnsweredAt.Max = math.Round(s.P50/100)/10, math.Round(s.Max/100)/10
	return phase, nil
}

// trickleResult is what happened to one trickling connection.
type trickleResult struct {
	connected      bool
	status         int  // the server's answer, 0 if none
	closedByServer bool // closed without an answer
	answeredAfter  time.Duration
}

// trickle opens a connection, sends a well-formed signed persist's headers,
// then its body trickleBytes every trickleInterval until stop or until the
// server answers or hangs up. It speaks raw HTTP/1.1 so that each trickle
// reaches the wire at once (net/http buffers a request body).
func trickle(server *serverProcess, w *wallet, declared int, stop <-chan struct{}) trickleResult {
	var res trickleResult
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(server.BaseURL, "http://"), 5*time.Second)
	if err != nil {
		return res
	}
	defer conn.Close()
	start := time.Now()
	// Only the first bytes are ever sent within a phase, so only they are
	// made; the signed hash covers them, and the server never gets to check
	// it against a body that does not end.
	body := randomBytes(trickleBytes * int((slowReadTimeout+10*time.Second)/trickleInterval))
	if _, err := conn.Write(trickleHeaders(server, w, body, declared)); err != nil {
		return res
	}
	res.connected = true

	answered := make(chan trickleResult, 1)
	go func() { answered <- readAnswer(conn, start) }()
	t := time.NewTicker(trickleInterval)
	defer t.Stop()
	for sent := 0; sent+trickleBytes <= len(body); sent += trickleBytes {
		select {
		case <-stop:
			return res
		case a := <-answered:
			a.connected = true
			return a
		case <-t.C:
		}
		piece := body[sent : sent+trickleBytes]
		if declared == 0 {
			piece = fmt.Appendf(nil, "%x\r\n%s\r\n", len(piece), piece)
		}
		if _, err := conn.Write(piece); err != nil {
			break // the server hung up; readAnswer says how
		}
	}
	select {
	case a := <-answered:
		a.connected = true
		return a
	case <-stop:
		return res
	}
}

// trickleHeaders is the request head of a persist whose body starts with
// body: chunked when declared is 0, else with Content-Length: declared.
func trickleHeaders(server *serverProcess, w *wallet, body []byte, declared int) []byte {
	var b strings.Builder
	host := strings.TrimPrefix(server.BaseURL, "http://")
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n", objectURL("", "persist", object{label: "channel_manager"}), host)
	for k, v := range w.persistHeaders(sha256.Sum256(body), w.persistChallenge()) {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if declared == 0 {
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", declared)
	}
	return []byte(b.String())
}

// readAnswer waits for the server's reply on conn, or for it to close.
func readAnswer(conn net.Conn, start time.Time) trickleResult {
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	res := trickleResult{answeredAfter: time.Since(start)}
	if err != nil {
		res.closedByServer = !isLocalClose(err)
		return res
	}
	resp.Body.Close()
	res.status = resp.StatusCode
	return res
}

// isLocalClose: the read failed because we closed the connection.
func isLocalClose(err error) bool {
	return strings.Contains(err.Error(), "use of closed network connection")
}

// normalWallets are ordinary wallets persisting small bodies back to back.
type normalWallets struct {
	e       *env
	server  *serverProcess
	hc      *http.Client
	wallets []*wallet
}

func newNormalWallets(e *env, server *serverProcess) (*normalWallets, error) {
	n := &normalWallets{e: e, server: server, hc: newHTTPClient(2 * normalWalletCount)}
	for range normalWalletCount {
		w, err := newWallet()
		if err != nil {
			return nil, err
		}
		n.wallets = append(n.wallets, w)
	}
	return n, nil
}

// run persists from every wallet for d and sums up what they saw.
func (n *normalWallets) run(ctx context.Context, d time.Duration) normalLoad {
	var (
		lat      latencies
		statuses statusCounts
		acked    atomic.Int64
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for _, w := range n.wallets {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				res := w.persist(ctx, n.hc, n.server.BaseURL, n.e.serverPub, bytesUpload(monitor(i%4), randomBytes(normalBodyBytes)))
				statuses.add(res.reply)
				lat.add(res.latency)
				if res.acked {
					acked.Add(1)
				}
			}
		})
	}
	wg.Wait()
	s := lat.summary()
	return normalLoad{Sent: s.Count, Acked: int(acked.Load()), Statuses: statuses.snapshot(), Latency: s}
}
