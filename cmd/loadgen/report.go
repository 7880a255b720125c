package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// measurement is one closed-loop run, as printed. rps counts successful
// operations only; latencies are of successful operations.
type measurement struct {
	Seconds  float64 `json:"seconds"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	// Server figures: absent for the raw baseline, and for a server this
	// run did not start unless -server-pid names it.
	ServerCPUPer1k   *float64 `json:"server_cpu_s_per_1k,omitempty"`
	ServerPeakRSSMiB *float64 `json:"server_peak_rss_mib,omitempty"`
	// The server's database pool, from its /metrics: connections taken per
	// operation (about one per query outside a transaction, one per
	// transaction), the share of those that found every connection busy,
	// and the mean time per operation spent waiting for one.
	ServerDBAcquiresPerOp *float64 `json:"server_db_acquires_per_op,omitempty"`
	ServerDBWaitedShare   *float64 `json:"server_db_acquires_waited,omitempty"`
	ServerDBWaitMsPerOp   *float64 `json:"server_db_wait_ms_per_op,omitempty"`
	// CPU of the PostgreSQL backends serving the bench database (not the
	// WAL writer or checkpointer, which the whole cluster shares).
	PGCPUPer1k float64 `json:"pg_backend_cpu_s_per_1k"`
	// WAL written per operation by the whole cluster (anyone else's writes
	// included): what each commit has to make durable.
	WALKiBPerOp float64 `json:"wal_kib_per_op"`
	// CPU of this load generator, to show how much of the machine the
	// client took from the server.
	ClientCPUPer1k float64 `json:"client_cpu_s_per_1k"`
	// Busy fraction of all the machine's CPUs during the window, other
	// users' work included: near 1 means the run was CPU-bound.
	HostCPUBusy float64 `json:"host_cpu_busy"`
	// OtherCPUCores: busy CPUs not spent by the server, the bench database's
	// backends or this process: PostgreSQL's WAL writer and checkpointer, the
	// kernel's own threads, and anyone else on the machine. Large values
	// mean the figures are noisy.
	OtherCPUCores float64 `json:"other_cpu_cores"`
	// BodiesExhausted: the pre-signed bodies ran out before the window
	// ended; the window was cut short there (seconds says where).
	BodiesExhausted bool   `json:"bodies_exhausted,omitempty"`
	FirstError      string `json:"first_error,omitempty"`
}

func newMeasurement(r run) measurement {
	ok := r.requests - r.errors
	lat := summarize(r.latencies)
	m := measurement{
		Seconds:         round3(r.seconds),
		Requests:        r.requests,
		Errors:          r.errors,
		P50:             lat.P50,
		P90:             lat.P90,
		P99:             lat.P99,
		HostCPUBusy:     round3(r.usage.hostBusy),
		BodiesExhausted: r.exhausted,
		FirstError:      r.firstError,
	}
	if r.seconds > 0 {
		m.RPS = round3(float64(ok) / r.seconds)
		ours := (r.usage.serverCPU + r.usage.backendCPU + r.usage.clientCPU) / r.seconds
		m.OtherCPUCores = round3(max(0, r.usage.hostCores-ours))
	}
	if r.requests > 0 {
		per1k := 1000 / float64(r.requests)
		m.PGCPUPer1k = round3(r.usage.backendCPU * per1k)
		m.ClientCPUPer1k = round3(r.usage.clientCPU * per1k)
		m.WALKiBPerOp = round3(float64(r.usage.walBytes) / kib / float64(r.requests))
	}
	return m
}

// ratios compare two measurements of one operation.
type ratios struct {
	RPS *float64 `json:"rps"`
	P50 *float64 `json:"p50"`
	P99 *float64 `json:"p99"`
	// PGCPU: PostgreSQL's CPU per operation against the other's, e.g. a
	// persist's (persist_object) against a plain INSERT of the same row.
	PGCPU *float64 `json:"pg_cpu"`
}

func compare(a, b measurement) *ratios {
	return &ratios{RPS: ratio(a.RPS, b.RPS), P50: ratio(a.P50, b.P50), P99: ratio(a.P99, b.P99), PGCPU: ratio(a.PGCPUPer1k, b.PGCPUPer1k)}
}

// report is one scenario's JSON line.
type report struct {
	Scenario    string `json:"scenario"`
	Op          string `json:"op"`
	BodyBytes   int    `json:"body_bytes"`
	Concurrency int    `json:"concurrency"`
	// HTTPPerOp: a restore is several requests (login, list, one per
	// object); every other operation is one.
	HTTPPerOp int `json:"http_requests_per_op"`
	measurement
	// Raw and ServerVsRaw: the same operation's database work through plain
	// pgx, and server/raw (rps: the share of raw throughput reached).
	Raw         *measurement `json:"raw,omitempty"`
	ServerVsRaw *ratios      `json:"server_vs_raw,omitempty"`
	// Scale: the same operation with the database nearly empty, and
	// full/empty (p50, p99: how much slower with StoredObjects stored).
	Empty         *measurement `json:"empty,omitempty"`
	FullVsEmpty   *ratios      `json:"full_vs_empty,omitempty"`
	StoredObjects int64        `json:"stored_objects,omitempty"`
	Note          string       `json:"note,omitempty"`
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeTable prints the reports as the Markdown table docs/performance.md
// keeps, so a run can be pasted there.
func writeTable(w io.Writer, reports []report) {
	fmt.Fprintln(w, "| scenario | rps | p50 ms | p90 ms | p99 ms | errors | server CPU s/1k | server peak RSS MiB | PG backend CPU s/1k | baseline rps | baseline p50 ms | rps ratio | p50 ratio |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range reports {
		base, cmp, kind := r.Raw, r.ServerVsRaw, "raw"
		if r.Empty != nil {
			base, cmp, kind = r.Empty, r.FullVsEmpty, "empty"
		}
		cells := []string{
			r.Scenario, num(r.RPS), num(r.P50), num(r.P90), num(r.P99), fmt.Sprint(r.Errors),
			opt(r.ServerCPUPer1k), opt(r.ServerPeakRSSMiB), num(r.PGCPUPer1k),
			"", "", "", "",
		}
		if base != nil {
			cells[9] = kind + " " + num(base.RPS)
			cells[10] = num(base.P50)
			cells[11], cells[12] = opt(cmp.RPS), opt(cmp.P50)
		}
		if r.BodiesExhausted {
			cells[0] += " (bodies ran out)"
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

func num(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

func opt(x *float64) string {
	if x == nil {
		return "–"
	}
	return num(*x)
}
