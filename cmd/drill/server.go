package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverSpec is how to run one `server serve`.
type serverSpec struct {
	name  string   // names its log file
	dbURL string   // DATABASE_URL
	port  int      // 0: a free one
	env   []string // settings over baseServerEnv, "NAME=value"
}

// baseServerEnv is every drill's server environment before its own
// settings: loopback only, no admin listener, warnings and errors logged.
// Rate limits are off unless a drill turns them on: one drill process makes
// far more requests from one address than any wallet does.
func baseServerEnv(e *env, dbURL string, port int) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOST=127.0.0.1",
		"PORT=" + strconv.Itoa(port),
		"ADMIN_ADDR=off",
		"DATABASE_URL=" + dbURL,
		"SECRET_KEY=" + e.serverSecret,
		"PUBLIC_KEY=" + e.serverPublic,
		"LOG_LEVEL=warn",
		"LOG_FORMAT=json",
		"RATE_LIMITS=off",
	}
}

// serverProcess is a running `server serve`.
type serverProcess struct {
	spec    serverSpec
	bin     string
	workDir string
	cmd     *exec.Cmd
	baseURL string
	logPath string
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// startServer starts the server of spec and waits until it answers.
func (e *env) startServer(ctx context.Context, spec serverSpec) (*serverProcess, error) {
	if spec.port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		spec.port = p
	}
	s := &serverProcess{
		spec:    spec,
		bin:     e.serverBin,
		workDir: e.workDir,
		baseURL: "http://127.0.0.1:" + strconv.Itoa(spec.port),
		logPath: filepath.Join(e.workDir, spec.name+".log"),
	}
	if err := s.start(ctx, e); err != nil {
		return nil, err
	}
	e.track(s)
	return s, nil
}

// start runs the process (again, after a kill) on the same port and
// database, appending to the same log.
func (s *serverProcess) start(ctx context.Context, e *env) error {
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor

	cmd := exec.Command(s.bin, "serve")
	// A directory of our own, so no developer's ./.env changes the settings.
	cmd.Dir = s.workDir
	cmd.Env = append(baseServerEnv(e, s.spec.dbURL, s.spec.port), s.spec.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd, s.exited, s.waitErr = cmd, make(chan struct{}), nil
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return s.waitReady(ctx, 60*time.Second)
}

func (s *serverProcess) pid() int { return s.cmd.Process.Pid }

// waitReady polls /readyz (the database answers and is migrated).
func (s *serverProcess) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server %s exited at start-up (%v); log: %s", s.spec.name, s.waitErr, s.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server %s not ready within %s; log: %s", s.spec.name, timeout, s.logPath)
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *serverProcess) kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// stop asks for a graceful shutdown and kills the process if it has not
// stopped within its SHUTDOWN_TIMEOUT (30 s) and some.
func (s *serverProcess) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(40 * time.Second):
		s.kill()
	}
}

// alive reports whether the process is still running (it did not crash).
func (s *serverProcess) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// memory reads the process's resident set now (VmRSS) and its peak
// (VmHWM), in bytes, from /proc/<pid>/status.
func (s *serverProcess) memory() (rss, peak int64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(raw)) {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", s.pid(), name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if peak == 0 {
		return 0, 0, errors.New("no VmHWM in /proc/<pid>/status")
	}
	return rss, peak, nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before it is used; the server (or PostgreSQL) then fails to start
// and says so.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
