package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Drill 4c: clients that ask for a large object and never read the reply.
// Before retrieves streamed, each such client held the whole payload for up
// to WRITE_TIMEOUT: 32 of them asking for a 30 MiB object grew the server
// by 902 MiB. Now each holds one RETRIEVE_CHUNK_BYTES buffer and no database
// connection, and is dropped after SEND_STALL_TIMEOUT.
const (
	stalledReaders   = 32
	stalledBodyBytes = 30 << 20
	// stalledGrowthBound is the promise: the server's resident set grows by
	// less than this while the readers stall.
	stalledGrowthBound = 96 << 20
	// stalledProbeBound: another node's retrieve answers within this
	// meanwhile.
	stalledProbeBound = time.Second
	// stalledWindow is how long memory and the other node's retrieves are
	// measured once every reader has its reply's head.
	stalledWindow = 10 * time.Second
	// stalledProbeBytes is the other node's object: a large channel monitor.
	stalledProbeBytes = 64 << 10
	// stalledSendTimeout is SEND_STALL_TIMEOUT's default, what is drilled.
	stalledSendTimeout = 30 * time.Second
)

type stalledFigures struct {
	Readers    int     `json:"readers"`
	BodyBytes  int     `json:"body_bytes"`
	BoundMiB   float64 `json:"bound_mib"`
	ProbeBound float64 `json:"probe_bound_ms"`
	// HeadsSeconds is how long until every reader had its reply's head: the
	// server had taken its buffer and started the stream.
	HeadsSeconds  float64        `json:"heads_seconds"`
	BaselineRSS   float64        `json:"baseline_rss_mib"`
	PeakRSS       float64        `json:"peak_rss_mib"` // the largest VmRSS sampled in the window
	GrowthMiB     float64        `json:"growth_mib"`
	Probes        latencySummary `json:"probes"`
	ProbeFailures []string       `json:"probe_failures,omitempty"`
	// Dropped counts the streams the server logged as cut short, and
	// DroppedAfter when the last was, after the heads arrived.
	Dropped      int     `json:"dropped"`
	DroppedAfter float64 `json:"dropped_after_seconds"`
	// ShortReads counts readers whose connection ended short of the
	// Content-Length once they read again: the server had hung up.
	ShortReads int `json:"short_reads"`
	// PinsLeft counts versions still pinned after the streams ended.
	PinsLeft int  `json:"pins_left"`
	ReadBack bool `json:"read_back"` // the object then reads back whole and exact
}

func stalledReadersDrill(ctx context.Context, e *env, v *verdict) (any, error) {
	dbURL, err := e.database(ctx, "drill_stalled_readers")
	if err != nil {
		return nil, err
	}
	// The defaults are what is drilled (RETRIEVE_CHUNK_BYTES 256 KiB,
	// SEND_STALL_TIMEOUT 30s, WRITE_TIMEOUT 5m, IN_FLIGHT_BYTES 256 MiB).
	server, err := e.startServer(ctx, serverSpec{name: "stalled-readers", dbURL: dbURL})
	if err != nil {
		return nil, err
	}
	f := &stalledFigures{Readers: stalledReaders, BodyBytes: stalledBodyBytes, BoundMiB: mib(stalledGrowthBound), ProbeBound: ms(stalledProbeBound)}
	hc := newHTTPClientTimeout(4, 2*time.Minute)
	big, other := object{label: "channel_manager"}, monitor(0)
	owner, prober, err := twoWallets()
	if err != nil {
		return nil, err
	}
	body, probeBody := randomBytes(stalledBodyBytes), randomBytes(stalledProbeBytes)
	for _, p := range []struct {
		w   *wallet
		obj object
		b   []byte
	}{{owner, big, body}, {prober, other, probeBody}} {
		if res := p.w.persist(ctx, hc, server.BaseURL, e.serverPub, bytesUpload(p.obj, p.b)); !res.acked {
			return f, fmt.Errorf("persist %s: %s", p.obj, res.reply)
		}
		if r, err := p.w.login(ctx, hc, server.BaseURL); err != nil {
			return f, fmt.Errorf("login: %w (%s)", err, r)
		}
	}

	baseline, _, err := server.Memory()
	if err != nil {
		return f, err
	}
	f.BaselineRSS = mib(baseline)
	e.log.Info("readers that never read", "count", stalledReaders, "object_bytes", stalledBodyBytes)
	start := time.Now()
	readers, err := openStalledReaders(ctx, server.BaseURL, objectURL("", "retrieve", big), owner.token)
	defer func() {
		for _, r := range readers {
			r.conn.Close()
		}
	}()
	if err != nil {
		return f, err
	}
	heads := time.Now()
	f.HeadsSeconds = time.Since(start).Round(10 * time.Millisecond).Seconds()

	// The window: memory sampled, and the other node reading its object.
	var peak int64
	var probes latencies
	probeClient := newHTTPClient(1)
	deadline := time.Now().Add(stalledWindow)
	for time.Now().Before(deadline) {
		if rss, _, err := server.Memory(); err == nil {
			peak = max(peak, rss)
		}
		r := prober.retrieve(ctx, probeClient, server.BaseURL, other, 0)
		probes.add(r.latency)
		if r.status != http.StatusOK || !bytes.Equal(r.body, probeBody) || r.latency > stalledProbeBound {
			f.ProbeFailures = append(f.ProbeFailures, r.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.PeakRSS, f.GrowthMiB = mib(peak), mib(peak-baseline)
	f.Probes = probes.summary()
	v.require(peak-baseline < stalledGrowthBound, "%d readers that never read grew the server by %.1f MiB (bound %.0f MiB)", stalledReaders, mib(peak-baseline), mib(stalledGrowthBound))
	v.require(len(f.ProbeFailures) == 0, "%d of the other node's retrieves failed or took over %s: %v", len(f.ProbeFailures), stalledProbeBound, f.ProbeFailures)

	// The server drops every stalled reader after SEND_STALL_TIMEOUT.
	e.log.Info("waiting for the server to drop the readers", "send_stall_timeout", stalledSendTimeout)
	until := heads.Add(stalledSendTimeout + 15*time.Second)
	for {
		if f.Dropped, err = countCutShort(server); err != nil {
			return f, err
		}
		if f.Dropped >= stalledReaders || time.Now().After(until) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	f.DroppedAfter = time.Since(heads).Round(100 * time.Millisecond).Seconds()
	v.require(f.Dropped == stalledReaders, "the server dropped %d of %d stalled readers within SEND_STALL_TIMEOUT (%s) and 15 s", f.Dropped, stalledReaders, stalledSendTimeout)
	for _, r := range readers {
		if r.readToEnd() < stalledBodyBytes {
			f.ShortReads++
		}
	}
	v.require(f.ShortReads == stalledReaders, "%d of %d stalled readers found their connection closed short of Content-Length", f.ShortReads, stalledReaders)

	if f.PinsLeft, err = countPins(ctx, dbURL); err != nil {
		return f, err
	}
	v.require(f.PinsLeft == 0, "%d versions are still pinned after every stream ended", f.PinsLeft)
	r := owner.retrieve(ctx, hc, server.BaseURL, big, 0)
	f.ReadBack = r.status == http.StatusOK && bytes.Equal(r.body, body)
	v.require(f.ReadBack, "the object does not read back whole afterwards: %s", r)
	v.require(server.Alive(), "the server exited (log: %s)", server.LogPath)
	checkLogForPanics(server, v)
	return f, nil
}

func twoWallets() (*wallet, *wallet, error) {
	a, err := newWallet()
	if err != nil {
		return nil, nil, err
	}
	b, err := newWallet()
	return a, b, err
}

// stalledReader is a retrieve whose reply's head was read, and nothing else.
type stalledReader struct {
	conn net.Conn
	resp *http.Response
}

// openStalledReaders sends stalledReaders retrieves of target at once, each
// on a connection whose receive buffer is 4 KiB, so that the server's
// writes block once the kernel's buffers are full, and reads only the
// replies' heads.
func openStalledReaders(ctx context.Context, baseURL, target, token string) ([]*stalledReader, error) {
	out := make([]*stalledReader, stalledReaders)
	errs := make([]error, stalledReaders)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() { out[i], errs[i] = openStalledReader(ctx, baseURL, target, token) })
	}
	wg.Wait()
	var ok []*stalledReader
	for i, r := range out {
		if errs[i] != nil {
			return ok, errs[i]
		}
		ok = append(ok, r)
	}
	return ok, nil
}

func openStalledReader(ctx context.Context, baseURL, target, token string) (*stalledReader, error) {
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		return nil, err
	}
	// The server without streaming reads the whole object before it answers.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: drill\r\nAuthorization: %s\r\n\r\n", target, token); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("stalled reader: no reply head: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("stalled reader: status %d", resp.StatusCode)
	}
	return &stalledReader{conn: conn, resp: resp}, nil
}

// readToEnd reads the rest of the reply and says how many body bytes there
// were in all.
func (r *stalledReader) readToEnd() int64 {
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := io.Copy(io.Discard, r.resp.Body)
	return n
}

// countCutShort counts the retrieves the server logged as cut short.
func countCutShort(s *serverProcess) (int, error) {
	raw, err := os.ReadFile(s.LogPath)
	if err != nil {
		return 0, err
	}
	return strings.Count(string(raw), `"msg":"retrieve cut short"`), nil
}

func countPins(ctx context.Context, dbURL string) (int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM object_versions WHERE pinned_until > now()`).Scan(&n)
	return n, err
}
