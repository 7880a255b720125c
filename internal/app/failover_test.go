package app_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/config"
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
	// What the LdkbackupNotReady and LdkbackupPersistErrors alerts read.
	m := h.metrics()
	require.Contains(t, m, "\nldkbackup_ready 0\n")
	require.Contains(t, m, `ldkbackup_http_requests_total{protocol="v1",route="/persist",status="503",tenant="default"} 3`)

	demote(t, h.cfg.DatabaseURL, false)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 64)).status)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/readyz", nil, nil).status)
	require.Contains(t, h.metrics(), "\nldkbackup_ready 1\n")
}

// TestFormationMetrics: with MONITOR_URL set, the replication check at
// start-up says in the metrics what the formation alerts read: whether the
// monitor answers and whether a commit waits for a synchronous standby.
func TestFormationMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) {
		// Nothing listens on port 1: the monitor does not answer.
		c.MonitorURL = "postgres://autoctl_node@127.0.0.1:1/pg_auto_failover?connect_timeout=1"
	})
	require.Eventually(t, func() bool {
		return strings.Contains(h.metrics(), `ldkbackup_db_formation{state="monitor_up"} 0`)
	}, 20*time.Second, 20*time.Millisecond)
	m := h.metrics()
	require.Contains(t, m, "\nldkbackup_db_synchronous 0\n")
	require.Contains(t, m, "\nldkbackup_db_replication_read 1\n")
	require.NotContains(t, m, `state="nodes"`, "no node counts without an answer from the monitor")
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
