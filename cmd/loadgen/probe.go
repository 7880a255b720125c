package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// clockTicksPerSecond is USER_HZ, the unit of the CPU times in /proc. It is
// 100 on every Linux architecture Go supports; reading it properly would need
// sysconf through cgo.
const clockTicksPerSecond = 100

// probe samples the CPU time (from /proc) of the server process, of the
// PostgreSQL backends serving the bench database, of this process and of the
// whole machine; the cluster's WAL position; the server's pool counters
// (from its /metrics); and the server's peak resident memory.
type probe struct {
	serverPID int // 0: not known (a server we did not start, without -server-pid)
	// db lists the backends of the bench database; its own backend is left
	// out of the sum.
	db *pgxpool.Pool
	// metricsURL is the server's /metrics, for its pool counters; "" when
	// not known.
	metricsURL string
}

// snapshot is the usage counters at one instant.
type snapshot struct {
	at         time.Time
	serverCPU  float64         // seconds
	clientCPU  float64         // seconds
	backendCPU map[int]float64 // PostgreSQL backend pid -> seconds
	hostBusy   float64         // seconds of all CPUs, not idle
	hostTotal  float64         // seconds of all CPUs
	pool       *poolCounters   // nil: not known
	walBytes   int64           // WAL position of the whole cluster
}

// usageDelta is what was used between two snapshots.
type usageDelta struct {
	start, end time.Time
	serverCPU  float64
	clientCPU  float64
	backendCPU float64
	hostBusy   float64       // fraction of the machine's CPU time that was busy
	hostCores  float64       // CPUs' worth of busy time
	pool       *poolCounters // the server's pool, when known at both ends
	walBytes   int64
}

func (p *probe) snapshot(ctx context.Context) (snapshot, error) {
	s := snapshot{at: time.Now()}
	var err error
	if p.serverPID != 0 {
		if s.serverCPU, err = processCPU(strconv.Itoa(p.serverPID)); err != nil {
			return s, fmt.Errorf("server process: %w", err)
		}
	}
	if s.clientCPU, err = processCPU("self"); err != nil {
		return s, err
	}
	if s.backendCPU, err = p.backends(ctx); err != nil {
		return s, err
	}
	if err := p.db.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&s.walBytes); err != nil {
		return s, fmt.Errorf("read the WAL position: %w", err)
	}
	if p.metricsURL != "" {
		// A server without these metrics just reports less.
		if pc, err := scrapePool(ctx, p.metricsURL); err == nil {
			s.pool = &pc
		}
	}
	if s.hostBusy, s.hostTotal, err = hostCPU(); err != nil {
		return s, err
	}
	return s, nil
}

// since is the usage from before to s. A backend that appeared in between
// (a pool opening a connection) counts from zero; one that went away is lost,
// which pools that keep their connections make rare.
func (s snapshot) since(before snapshot) usageDelta {
	d := usageDelta{
		start:     before.at,
		end:       s.at,
		serverCPU: s.serverCPU - before.serverCPU,
		clientCPU: s.clientCPU - before.clientCPU,
		walBytes:  s.walBytes - before.walBytes,
	}
	for pid, cpu := range s.backendCPU {
		d.backendCPU += cpu - before.backendCPU[pid]
	}
	if total := s.hostTotal - before.hostTotal; total > 0 {
		d.hostBusy = (s.hostBusy - before.hostBusy) / total
	}
	if s.pool != nil && before.pool != nil {
		d.pool = &poolCounters{
			acquires:    s.pool.acquires - before.pool.acquires,
			waits:       s.pool.waits - before.pool.waits,
			waitSeconds: s.pool.waitSeconds - before.pool.waitSeconds,
		}
	}
	if secs := s.at.Sub(before.at).Seconds(); secs > 0 {
		d.hostCores = (s.hostBusy - before.hostBusy) / secs
	}
	return d
}

// backends returns the CPU time of each backend of the bench database, so
// that since can subtract per process.
func (p *probe) backends(ctx context.Context) (map[int]float64, error) {
	rows, err := p.db.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		return nil, fmt.Errorf("list PostgreSQL backends: %w", err)
	}
	defer rows.Close()
	out := map[int]float64{}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		// A backend may exit between the query and the read; so be it.
		if cpu, err := processCPU(strconv.Itoa(pid)); err == nil {
			out[pid] = cpu
		}
	}
	return out, rows.Err()
}

// processCPU is utime+stime of /proc/<pid>/stat, in seconds.
func processCPU(pid string) (float64, error) {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces or
	// parentheses itself, so count fields from the last ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%s/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(raw[i+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%s/stat: bad utime or stime", pid)
	}
	return (utime + stime) / clockTicksPerSecond, nil
}

// hostCPU reads the first line of /proc/stat: busy and total CPU seconds of
// all CPUs since boot. Idle and iowait count as not busy.
func hostCPU() (busy, total float64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, fmt.Errorf("/proc/stat: empty")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line")
	}
	var idle float64
	// user nice system idle iowait irq softirq steal (guest time is already
	// inside user and nice, so it is not added again).
	for i, f := range fields[1:min(len(fields), 9)] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return (total - idle) / clockTicksPerSecond, total / clockTicksPerSecond, nil
}

// resetPeakRSS restarts the server's VmHWM from its current RSS (Linux 4.0+
// "clear_refs 5"), so each scenario reports its own peak. false when it
// cannot (no pid, or not allowed): the peak is then the process's lifetime.
func (p *probe) resetPeakRSS() bool {
	if p.serverPID == 0 {
		return false
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.serverPID), []byte("5"), 0) == nil
}

// peakRSS is the server's VmHWM in bytes; 0 when not known.
func (p *probe) peakRSS() int64 {
	if p.serverPID == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.serverPID))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
