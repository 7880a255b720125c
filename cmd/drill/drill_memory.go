package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net/http"
	"sync"
	"time"
)

// Drill 4, second half: many large uploads at once, and the server's
// memory. The server holds at most IN_FLIGHT_BYTES (256 MiB) of persist
// bodies; each is held about twice (the read buffer and the query's
// parameter), so the process should stay well under 1 GiB.
const (
	memoryBodyBytes = 8 << 20
	// memoryBound is the promise: the server's peak resident set (VmHWM)
	// stays under it, whatever the concurrency.
	memoryBound = 1 << 30
)

// memoryWaves are the concurrent uploads of each wave: the 64, and
// twice that to show the peak does not grow with concurrency.
var memoryWaves = []int{64, 128}

type memoryFigures struct {
	BodyBytes      int            `json:"body_bytes"`
	BoundBytes     int64          `json:"bound_bytes"`
	IdleRSSMiB     float64        `json:"idle_rss_mib"`
	Waves          []memoryWave   `json:"waves"`
	Integrity      integrity      `json:"integrity"`
	ServerSettings []string       `json:"server_settings"`
	Statuses       map[string]int `json:"statuses"`
}

type memoryWave struct {
	Concurrent int `json:"concurrent"`
	Acked      int `json:"acked"`
	Refused503 int `json:"refused_503"`
	Other      int `json:"other"`
	// OtherExamples are a few of the other replies, for the report.
	OtherExamples []string       `json:"other_examples,omitempty"`
	Seconds       float64        `json:"seconds"`
	Latency       latencySummary `json:"latency"`
	// PeakRSSMiB is VmHWM after the wave: the peak since the server started.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

func memoryDrill(ctx context.Context, e *env, v *verdict) (any, error) {
	dbURL, err := e.database(ctx, "drill_memory")
	if err != nil {
		return nil, err
	}
	// The defaults (IN_FLIGHT_BYTES 256 MiB, IN_FLIGHT_WAIT 10s,
	// MAX_BODY_BYTES 32 MiB) are what is drilled; nothing is set.
	server, err := e.startServer(ctx, serverSpec{name: "memory", dbURL: dbURL})
	if err != nil {
		return nil, err
	}
	f := &memoryFigures{BodyBytes: memoryBodyBytes, BoundBytes: memoryBound, ServerSettings: []string{}}
	if rss, _, err := server.Memory(); err == nil {
		f.IdleRSSMiB = mib(rss)
	}
	base := randomBytes(memoryBodyBytes)
	// Overloaded on purpose, a large persist may wait IN_FLIGHT_WAIT for
	// memory and then its turn at the database: this drill bounds memory,
	// not latency, so its requests wait as long as internal/client's (2 min).
	hc := newHTTPClientTimeout(256, 2*time.Minute)
	var statuses statusCounts
	for _, n := range memoryWaves {
		e.log.Info("large uploads at once", "count", n, "bytes_each", memoryBodyBytes)
		wave, err := memoryWaveRun(ctx, e, server, hc, base, n, &statuses)
		if err != nil {
			return f, err
		}
		f.Waves = append(f.Waves, wave)
		v.require(wave.Other == 0, "%d concurrent uploads: %d got neither 200 nor 503 (%v)", n, wave.Other, statuses.snapshot())
		v.require(wave.Acked > 0, "%d concurrent uploads: none was accepted", n)
		v.require(wave.PeakRSSMiB < mib(memoryBound), "%d concurrent uploads: peak RSS %.0f MiB is over %.0f MiB", n, wave.PeakRSSMiB, mib(memoryBound))
	}
	f.Statuses = statuses.snapshot()
	if f.Integrity, err = checkIntegrity(ctx, dbURL); err != nil {
		return f, err
	}
	f.Integrity.check(v)
	v.require(server.Alive(), "the server exited (log: %s)", server.LogPath)
	checkLogForPanics(server, v)
	return f, nil
}

// memoryWaveRun starts n uploads of memoryBodyBytes at once, each from a
// wallet of its own, and reads the server's peak memory after them.
func memoryWaveRun(ctx context.Context, e *env, server *serverProcess, hc *http.Client, base []byte, n int, statuses *statusCounts) (memoryWave, error) {
	wave := memoryWave{Concurrent: n}
	wallets := make([]*wallet, n)
	for i := range wallets {
		var err error
		if wallets[i], err = newWallet(); err != nil {
			return wave, err
		}
	}
	var (
		lat   latencies
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = time.Now()
	)
	for _, w := range wallets {
		wg.Go(func() {
			res := w.persist(ctx, hc, server.BaseURL, e.serverPub, sharedBodyUpload(object{label: "channel_manager"}, base))
			statuses.add(res.reply)
			lat.add(res.latency)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case res.acked:
				wave.Acked++
			case res.status == http.StatusServiceUnavailable && res.jsonError() && res.header.Get("Retry-After") != "":
				wave.Refused503++
			default:
				wave.Other++
				if len(wave.OtherExamples) < 3 {
					wave.OtherExamples = append(wave.OtherExamples, res.reply.String())
				}
			}
		})
	}
	wg.Wait()
	wave.Seconds = time.Since(start).Round(100 * time.Millisecond).Seconds()
	wave.Latency = lat.summary()
	_, peak, err := server.Memory()
	wave.PeakRSSMiB = mib(peak)
	return wave, err
}

// sharedBodyUpload is a body of len(base) bytes that is base with a random
// first 32 bytes, streamed, so that many uploads at once cost the drill one
// copy of base.
func sharedBodyUpload(obj object, base []byte) upload {
	prefix := make([]byte, 32)
	_, _ = rand.Read(prefix)
	rest := base[len(prefix):]
	h := sha256.New()
	h.Write(prefix)
	h.Write(rest)
	u := upload{obj: obj, size: int64(len(base))}
	h.Sum(u.sum[:0])
	u.open = func() io.Reader { return io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(rest)) }
	return u
}
