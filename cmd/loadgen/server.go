package main

import (
	"context"
	"path/filepath"
	"strconv"
	"time"

	"ldkbackup/internal/config"
	"ldkbackup/internal/serverproc"
)

// serverProcess is a `server serve` this run started, with a database and a
// key pair of its own.
type serverProcess struct {
	*serverproc.Process
	adminURL  string // metrics, and /debug/pprof when started with pprof
	publicKey string
}

// unrefused is a rate limit no run reaches.
const unrefused = "1000000000"

// serverSettings are the environment of the started server. Rate limits are
// on, as in production, so every request pays for its counting; they are set
// so high that nothing is refused (one address and 64 nodes make far more
// requests than any wallet). Quotas stay on, set high enough for the run.
func serverSettings(dbURL string, adminPort int, secret, public string, pprof bool) []string {
	return []string{
		// The admin listener's default port would collide with a developer's
		// server or a second loadgen.
		"ADMIN_ADDR=127.0.0.1:" + strconv.Itoa(adminPort),
		"ADMIN_PPROF=" + strconv.FormatBool(pprof),
		"DATABASE_URL=" + dbURL,
		"SECRET_KEY=" + secret,
		"PUBLIC_KEY=" + public,
		"MIGRATE_ON_START=false", // loadgen migrates before creating its raw tables
		"RATE_LIMITS=on",
		"RATE_PER_ADDRESS_PER_MINUTE=" + unrefused,
		"RATE_PER_NODE_PER_MINUTE=" + unrefused,
		"NEW_NODES_PER_ADDRESS_PER_HOUR=" + unrefused,
		"QUOTA_BYTES=" + strconv.FormatInt(1<<40, 10),
		"QUOTA_OBJECTS=1000000",
		"LOG_FORMAT=json",
		"LOG_LEVEL=warn",
	}
}

// startServer runs bin serve against dbURL in dir, with a clean
// environment (extra: settings over loadgen's), so neither a developer's .env nor their shell's settings
// change what is measured, and waits until it is ready.
func startServer(ctx context.Context, bin, dir, dbURL string, pprof bool, extra []string) (*serverProcess, error) {
	secret, public, err := config.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	adminPort, err := serverproc.FreePort()
	if err != nil {
		return nil, err
	}
	p, err := serverproc.Start(ctx, serverproc.Spec{
		Bin:          bin,
		Dir:          dir,
		LogPath:      filepath.Join(dir, "server.log"),
		Env:          append(serverSettings(dbURL, adminPort, secret, public, pprof), extra...),
		ReadyTimeout: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	return &serverProcess{Process: p, adminURL: "http://127.0.0.1:" + strconv.Itoa(adminPort), publicKey: public}, nil
}
