package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/app"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/pgtest"
)

// The drills' VSS verdicts: a load against a real server on a real
// PostgreSQL finds every acknowledged put back at its version, and the
// read-back finds a key whose value or version changed behind the
// server's back.
func TestVSSLoadFindsLostAndWrongVersions(t *testing.T) {
	t.Parallel()
	pool, a := startServer(t)

	const rounds = 6
	load, err := newVSSLoad(newHTTPClient(4), func() string { return a.URL() + "/vss" }, 2, 2, 512, nil)
	require.NoError(t, err)
	load.failFast = 5 * time.Second
	load.run(nil, rounds)
	f := load.figures()
	require.Equal(t, 2*rounds, f.Acknowledged, "every put of a healthy server is acknowledged: %+v", f)
	require.Equal(t, 4*rounds, f.Requests)
	require.Equal(t, map[string]int{"ok": 4 * rounds}, load.since(time.Time{}))
	require.Empty(t, load.since(time.Now()))
	require.Zero(t, f.Unclean, f.UncleanExample)
	load.readBack(context.Background(), f)
	require.Zero(t, f.Lost, f.LostExamples)
	require.Zero(t, f.WrongVersion, f.LostExamples)
	var v verdict
	f.check(&v, false)
	require.Empty(t, v.failures)

	// The compare-and-swap writer's keys are at version rounds/2 (each key
	// written rounds/2 times); the blind writer's at 1.
	var casVersions []int64
	rows, err := pool.Query(context.Background(), `SELECT version FROM vss_objects WHERE key <> 'global_version' ORDER BY version`)
	require.NoError(t, err)
	for rows.Next() {
		var n int64
		require.NoError(t, rows.Scan(&n))
		casVersions = append(casVersions, n)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []int64{1, 1, rounds / 2, rounds / 2}, casVersions)

	tamper := func(sql string) *vssFigures {
		t.Helper()
		_, err := pool.Exec(context.Background(), sql)
		require.NoError(t, err)
		f := &vssFigures{}
		load.readBack(context.Background(), f)
		return f
	}
	f = tamper(`UPDATE vss_objects SET version = version + 1 WHERE key = 'monitors/0'`)
	require.Equal(t, 2, f.WrongVersion, f.LostExamples)
	require.Zero(t, f.Lost)
	f = tamper(`UPDATE vss_objects SET value = 'older' WHERE key = 'monitors/1'`)
	require.Equal(t, 2, f.Lost, f.LostExamples)
	f = tamper(`DELETE FROM vss_objects WHERE key = 'monitors/0'`)
	require.Equal(t, 4, f.Lost, f.LostExamples)
	v = verdict{}
	f.check(&v, false)
	require.NotEmpty(t, v.failures)
}

// A put whose answer is lost may or may not have applied: the writer reads
// the key before writing it again and takes whichever version it finds, so
// its next compare-and-swap put is acknowledged, not refused as a
// conflict.
func TestVSSLoadResyncsAfterALostAnswer(t *testing.T) {
	t.Parallel()
	_, a := startServer(t)

	// The proxy loses the answers of puts: after passing the put on
	// (applied), or before (not applied).
	const (
		pass = iota
		applyThenDrop
		drop
	)
	var mode atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := mode.Load()
		if !strings.HasSuffix(r.URL.Path, "/putObjects") {
			m = pass
		}
		if m == drop {
			panic(http.ErrAbortHandler)
		}
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		req, err := http.NewRequestWithContext(r.Context(), r.Method, a.URL()+r.URL.Path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		if m == applyThenDrop {
			panic(http.ErrAbortHandler)
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)

	load, err := newVSSLoad(newHTTPClient(4), func() string { return proxy.URL + "/vss" }, 2, 1, 512, nil)
	require.NoError(t, err)
	for _, m := range []int32{pass, applyThenDrop, pass, drop, pass, pass} {
		mode.Store(m)
		load.run(nil, 1)
	}
	f := load.figures()
	require.Zero(t, f.Unclean, f.UncleanExample)
	require.Equal(t, 1, f.UnackedApplied, "%+v", f)
	require.Equal(t, 1, f.UnackedNotApplied, "%+v", f)
	require.Equal(t, 4, f.Failed["none"], "both writers' puts in the two rounds that lost them")
	require.Equal(t, 4, load.since(time.Time{})["failed"])
	load.readBack(context.Background(), f)
	require.Zero(t, f.Lost, f.LostExamples)
	require.Zero(t, f.WrongVersion, f.LostExamples)
}

// startServer serves a new database of its own on a free port, with
// default settings, until the test ends.
func startServer(t *testing.T) (*pgxpool.Pool, *app.App) {
	t.Helper()
	pool, dbURL := pgtest.NewPool(t)
	secret, public, err := config.GenerateKeyPair()
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Host, cfg.Port, cfg.AdminAddr = "127.0.0.1", 0, ""
	cfg.DatabaseURL, cfg.SecretKey, cfg.PublicKey = dbURL, secret, public
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), backup.SystemClock{})
	require.NoError(t, err)
	require.NoError(t, a.Start())
	t.Cleanup(func() { _ = a.Close() })
	return pool, a
}
