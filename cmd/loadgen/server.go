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
	"syscall"
	"time"

	"ldkbackup/internal/config"
)

// serverProcess is a `server serve` this run started, with a database and a
// key pair of its own.
type serverProcess struct {
	cmd       *exec.Cmd
	baseURL   string
	adminURL  string // metrics, and /debug/pprof when started with pprof
	publicKey string
	logPath   string
	exited    chan struct{} // closed when the process has exited
	waitErr   error
}

// buildServer builds ./cmd/server as `make build` does, so the figures are
// those of the production binary.
func buildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "server")
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-o", bin, "./cmd/server")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/server (run loadgen from the repository root, or pass -server-bin): %w\n%s", err, out)
	}
	return bin, nil
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// serverSettings are the environment of the started server. Rate limits are
// off (documented for load tests: one address and a few nodes make far more
// requests than any wallet); quotas stay on, set high enough for the run.
func serverSettings(dbURL, port, adminPort, secret, public string, pprof bool) []string {
	return []string{
		"HOST=127.0.0.1",
		"PORT=" + port,
		// The admin listener's default port would collide with a developer's
		// server or a second loadgen.
		"ADMIN_ADDR=127.0.0.1:" + adminPort,
		"ADMIN_PPROF=" + strconv.FormatBool(pprof),
		"DATABASE_URL=" + dbURL,
		"SECRET_KEY=" + secret,
		"PUBLIC_KEY=" + public,
		"MIGRATE_ON_START=false", // loadgen migrates before creating its raw tables
		"RATE_LIMITS=off",
		"QUOTA_BYTES=" + strconv.FormatInt(1<<40, 10),
		"QUOTA_OBJECTS=1000000",
		"LOG_FORMAT=json",
		"LOG_LEVEL=warn",
	}
}

// startServer runs bin serve against dbURL and waits until it answers.
// It runs in dir with a clean environment, so neither a developer's .env
// nor their shell's settings change what is measured.
func startServer(ctx context.Context, bin, dir, dbURL string, pprof bool) (*serverProcess, error) {
	secret, public, err := config.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor

	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, serverSettings(dbURL, port, adminPort, secret, public, pprof)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &serverProcess{
		cmd:       cmd,
		baseURL:   "http://127.0.0.1:" + port,
		adminURL:  "http://127.0.0.1:" + adminPort,
		publicKey: public,
		logPath:   logPath,
		exited:    make(chan struct{}),
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *serverProcess) pid() int { return s.cmd.Process.Pid }

// waitReady polls /v1/status until it answers 200.
func (s *serverProcess) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/v1/status", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("the server exited at start-up (%v); its log: %s", s.waitErr, s.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not answer within %s; its log: %s", timeout, s.logPath)
		}
	}
}

// stop asks the server to shut down gracefully and kills it if it has not
// within its own shutdown timeout.
func (s *serverProcess) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(40 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("the server did not stop within 40s and was killed")
	}
	var exit *exec.ExitError
	if s.waitErr != nil && !errors.As(s.waitErr, &exit) {
		return s.waitErr
	}
	return nil
}

// freePort asks the kernel for a free port. Another process could take it
// before the server binds it; then the server fails to start and says so.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}
