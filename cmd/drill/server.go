package main

import (
	"context"
	"path/filepath"

	"ldkbackup/internal/serverproc"
)

// serverSpec is how to run one `server serve`.
type serverSpec struct {
	name  string   // names its log file
	dbURL string   // DATABASE_URL
	env   []string // settings over baseServerEnv, "NAME=value"
}

// baseServerEnv is every drill's server environment before its own
// settings: no admin listener, warnings and errors logged. Rate limits are
// off unless a drill turns them on: one drill process makes far more
// requests from one address than any wallet does.
func baseServerEnv(e *env, dbURL string) []string {
	return []string{
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
type serverProcess = serverproc.Process

// startServer starts the server of spec on a free port and waits until it
// is ready; env stops it at the end of the run.
func (e *env) startServer(ctx context.Context, spec serverSpec) (*serverProcess, error) {
	s, err := serverproc.Start(ctx, serverproc.Spec{
		Bin:     e.serverBin,
		Dir:     e.workDir,
		LogPath: filepath.Join(e.workDir, spec.name+".log"),
		Env:     append(baseServerEnv(e, spec.dbURL), spec.env...),
	})
	if err != nil {
		return nil, err
	}
	e.track(s)
	return s, nil
}
