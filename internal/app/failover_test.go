package app_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/pgtest"
)

// TestDemotedPrimaryAnswers503WithRetryAfter: the database becomes a node
// that takes no writes (as a primary pg_auto_failover demoted, which
// restarts read-only and answers writes with SQLSTATE 25006): persists get
// 503 with Retry-After and a JSON error, never 500, and /readyz says not
// ready; when it takes writes again the same server persists again by
// itself.
func TestDemotedPrimaryAnswers503WithRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 64)).status)

	demote(t, h.cfg.DatabaseURL, true)
	for range 3 {
		r := h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 64))
		r.requireError(t, http.StatusServiceUnavailable)
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		require.NoError(t, err, "Retry-After %q", r.header.Get("Retry-After"))
		require.Positive(t, secs)
	}
	h.do(http.MethodGet, "/readyz", nil, nil).requireError(t, http.StatusServiceUnavailable)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/healthz", nil, nil).status)

	demote(t, h.cfg.DatabaseURL, false)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 64)).status)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/readyz", nil, nil).status)
}

// demote makes the database at dbURL read-only for new sessions (or
// writable again) and ends its other sessions, as a restart of a demoted
// node does.
func demote(t *testing.T, dbURL string, readOnly bool) {
	t.Helper()
	pgtest.SetReadOnly(t, dbURL, readOnly)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	require.NoError(t, err)
}
