// Package serverproc runs `server serve` as a child process, the way an
// operator would, for the tools that measure and test the real binary: the
// load benchmark (cmd/loadgen) and the reliability drills (cmd/drill).
package serverproc

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

// Build builds ./cmd/server into dir as `make build` does, so what runs is
// the production binary. It must run from the repository root.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "server")
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-o", bin, "./cmd/server")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/server (run from the repository root, or pass -server-bin): %w\n%s", err, out)
	}
	return bin, nil
}

// FreePort asks the kernel for a free loopback port. Another process could
// take it before it is used; the server then fails to start and says so.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Spec is how to run one server.
type Spec struct {
	Bin string
	// Dir is the working directory: one of the caller's, so no developer's
	// ./.env changes the settings.
	Dir string
	// LogPath receives the server's output, appended across restarts.
	LogPath string
	// Port to listen on; 0: a free one.
	Port int
	// Env is the whole environment besides PATH, HOST and PORT, as
	// "NAME=value": the server sees nothing of the caller's.
	Env []string
	// ReadyTimeout bounds each start; 0: 60 s.
	ReadyTimeout time.Duration
}

// Process is a running server.
type Process struct {
	spec    Spec
	BaseURL string
	LogPath string

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// Start runs the server of spec and waits until /readyz answers 200 (the
// database answers and its schema is current).
func Start(ctx context.Context, spec Spec) (*Process, error) {
	if spec.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		spec.Port = p
	}
	if spec.ReadyTimeout == 0 {
		spec.ReadyTimeout = 60 * time.Second
	}
	p := &Process{spec: spec, BaseURL: "http://127.0.0.1:" + strconv.Itoa(spec.Port), LogPath: spec.LogPath}
	if err := p.Restart(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Restart runs the process again (after Kill or Stop) on the same port and
// database, appending to the same log, and waits until it is ready.
func (p *Process) Restart(ctx context.Context) error {
	logFile, err := os.OpenFile(p.spec.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor

	cmd := exec.Command(p.spec.Bin, "serve")
	cmd.Dir = p.spec.Dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOST=127.0.0.1", "PORT=" + strconv.Itoa(p.spec.Port)}, p.spec.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.spec.Bin, err)
	}
	p.cmd, p.exited, p.waitErr = cmd, make(chan struct{}), nil
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(ctx); err != nil {
		p.Kill()
		return err
	}
	return nil
}

// PID is the process id of the running server.
func (p *Process) PID() int { return p.cmd.Process.Pid }

func (p *Process) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(p.spec.ReadyTimeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.BaseURL+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("the server exited at start-up (%v); its log: %s", p.waitErr, p.LogPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server was not ready within %s; its log: %s", p.spec.ReadyTimeout, p.LogPath)
		}
	}
}

// Alive reports whether the process is still running (it did not crash).
func (p *Process) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	if !p.Alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop asks for a graceful shutdown and kills the process if it has not
// stopped within its SHUTDOWN_TIMEOUT (30 s) and some. An error means it
// had to be killed or did not exit cleanly.
func (p *Process) Stop() error {
	if !p.Alive() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(40 * time.Second):
		p.Kill()
		return errors.New("the server did not stop within 40s and was killed")
	}
	var exit *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exit) {
		return p.waitErr
	}
	return nil
}

// Memory reads the process's resident set now (VmRSS) and its peak
// (VmHWM), in bytes, from /proc/<pid>/status.
func (p *Process) Memory() (rss, peak int64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
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
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", p.PID(), name, err)
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
