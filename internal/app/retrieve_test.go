package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/app"
	"ldkbackup/internal/config"
	"ldkbackup/internal/postgres"
)

// These tests read versions several chunks long. A small chunk keeps them
// fast: a version is cut into as many queries as with the default 256 KiB
// chunk and a version 64 times as large.
const testChunk = 4 << 10

// stallBytes is a version larger than what the kernel buffers between the
// server and a client that stops reading (a send buffer of at most
// net.ipv4.tcp_wmem's 4 MiB, and the small receive buffer of
// stalledRetrieve): a stream of it cannot end until the client reads.
const stallBytes = 8 << 20

func TestRetrieveStreamsLargeVersionsByteExact(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RetrieveChunkBytes, c.RetainVersions = testChunk, 2 })
	n := newNode(t)
	// Around the chunk boundaries, and a version of many chunks.
	sizes := []int{1, testChunk - 1, testChunk, testChunk + 1, 3 * testChunk, 3*testChunk + 1, 100<<10 + 17}
	bodies := map[string][]byte{}
	for i, size := range sizes {
		label := "channel_monitor&channelId=" + fmt.Sprintf("%064x", i)
		bodies[label] = randomBytes(t, size)
		require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label="+label, bodies[label]).status)
	}
	tok := map[string]string{"Authorization": h.login(n)}
	for label, body := range bodies {
		r := h.do(http.MethodGet, "/v1/retrieve?network=regtest&label="+label, tok, nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		require.Equal(t, strconv.Itoa(len(body)), r.header.Get("Content-Length"))
		require.Equal(t, "application/octet-stream", r.header.Get("Content-Type"))
		require.True(t, bytes.Equal(body, r.body), "%d bytes read back exactly", len(body))
	}

	// Older versions by number, while they are held; then 404 as before.
	var versions [][]byte
	for range 3 {
		versions = append(versions, randomBytes(t, 5*testChunk+3))
		require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", versions[len(versions)-1]).status)
	}
	for v := 2; v <= 3; v++ {
		r := h.do(http.MethodGet, fmt.Sprintf("/v1/retrieve?network=regtest&label=channel_manager&version=%d", v), tok, nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		require.True(t, bytes.Equal(versions[v-1], r.body), "version %d", v)
	}
	before := h.snapshot()
	msg := h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=channel_manager&version=1", tok, nil).requireError(t, http.StatusNotFound)
	require.Contains(t, msg, "no longer held")
	msg = h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=channel_manager&version=4", tok, nil).requireError(t, http.StatusNotFound)
	require.Contains(t, msg, "no version 4")
	h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=ping", tok, nil).requireError(t, http.StatusNotFound)
	require.Equal(t, before, h.snapshot())

	// Every stream ended its pin.
	var pinned int
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT count(*) FROM object_versions WHERE pinned_until IS NOT NULL`).Scan(&pinned))
	require.Zero(t, pinned)
}

// TestRetrieveFinishesTheVersionItStarted: a client that pauses in the
// middle of a large version, while the node persists RETAIN_VERSIONS+1 newer
// versions and housekeeping runs, still reads exactly the version that was
// the latest when it asked; once it has read it, the version is no longer
// pinned (the read of the last chunk ended the pin before the chunk was
// sent) and housekeeping drops its bytes.
func TestRetrieveFinishesTheVersionItStarted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RetrieveChunkBytes, c.RetainVersions = 32<<10, 1 })
	ctx := context.Background()
	n := newNode(t)
	first := randomBytes(t, stallBytes)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", first).status)

	resp, conn := stalledRetrieve(t, h.url, "/v1/retrieve?network=regtest&label=channel_manager", h.login(n))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.EqualValues(t, len(first), resp.ContentLength)
	head := make([]byte, 1000)
	_, err := io.ReadFull(resp.Body, head)
	require.NoError(t, err)

	for range h.cfg.RetainVersions + 1 {
		require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", randomBytes(t, 100)).status)
	}
	store := postgres.NewStore(h.pool)
	sw, err := store.Housekeep(ctx, h.clock.Now(), postgres.Sweep{Retain: int(h.cfg.RetainVersions)})
	require.NoError(t, err)
	require.True(t, sw.Ran)
	require.Zero(t, sw.Pruned, "the pinned version is kept")

	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.True(t, bytes.Equal(first, append(head, rest...)), "the version that was the latest when the retrieve began, whole")

	sw, err = store.Housekeep(ctx, h.clock.Now(), postgres.Sweep{Retain: int(h.cfg.RetainVersions)})
	require.NoError(t, err)
	require.EqualValues(t, 1, sw.Pruned, "unpinned once read, the old version's bytes go")
	var held int
	require.NoError(t, h.pool.QueryRow(ctx, `SELECT count(*) FROM object_versions WHERE payload IS NOT NULL`).Scan(&held))
	require.Equal(t, 1, held)
}

// TestRetrieveCutShortWhenItsVersionGoes: when a version's bytes go in the
// middle of its stream (here the node deletes its account, which pins do
// not stop), the client sees a short body, never other bytes.
func TestRetrieveCutShortWhenItsVersionGoes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RetrieveChunkBytes = 32 << 10 })
	n := newNode(t)
	body := randomBytes(t, stallBytes)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", body).status)
	tok := h.login(n)

	resp, conn := stalledRetrieve(t, h.url, "/v1/retrieve?network=regtest&label=channel_manager", tok)
	defer conn.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	head := make([]byte, 1000)
	_, err := io.ReadFull(resp.Body, head)
	require.NoError(t, err)
	r := h.do(http.MethodDelete, "/v1/account?network=regtest", map[string]string{"Authorization": tok}, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)

	rest, err := io.ReadAll(resp.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the connection ends short of Content-Length")
	got := append(head, rest...)
	require.Less(t, len(got), len(body))
	require.True(t, bytes.Equal(body[:len(got)], got), "what arrived is the version's own bytes")
}

// TestRetrievesAndPersistsShareTheInFlightBudget: a replica whose budget
// holds one retrieve buffer is full while one client stalls a stream: the
// next retrieve and a persist wait IN_FLIGHT_WAIT, then get 503 with
// Retry-After and a JSON error, and nothing changes.
func TestRetrievesAndPersistsShareTheInFlightBudget(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", randomBytes(t, stallBytes)).status)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 10)).status)
	tok := h.login(n)
	small, _ := h.startReplicaWith(func(c *config.Config) {
		c.MaxBodyBytes, c.InFlightBytes, c.RetrieveChunkBytes = 32<<10, 32<<10, 32<<10
		c.InFlightWait = 100 * time.Millisecond
	})

	resp, conn := stalledRetrieve(t, small, "/v1/retrieve?network=regtest&label=channel_manager", tok)
	defer conn.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the stream holds the whole budget from here on")

	before := h.snapshot()
	r := h.doURL(small, http.MethodGet, "/v1/retrieve?network=regtest&label=ping", map[string]string{"Authorization": tok}, nil)
	r.requireError(t, http.StatusServiceUnavailable)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	body := randomBytes(t, 100)
	r = h.doURL(small, http.MethodPost, "/v1/persist?network=regtest&label=ping", n.persistHeaders(body), body)
	r.requireError(t, http.StatusServiceUnavailable)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	require.Equal(t, before, h.snapshot())
}

// TestRetrieveDropsAStalledReader: a client that takes no bytes for
// SEND_STALL_TIMEOUT is dropped, long before WRITE_TIMEOUT; and renewing the
// deadline for each piece never stretches a reply past WRITE_TIMEOUT. The
// dropped stream's buffer returns to the budget, which on this replica holds
// one buffer.
func TestRetrieveDropsAStalledReader(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	body := randomBytes(t, stallBytes)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", body).status)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", []byte("pong")).status)
	tok := h.login(n)

	for _, tc := range []struct {
		name         string
		stall, write time.Duration
	}{
		{"by SEND_STALL_TIMEOUT", 100 * time.Millisecond, 5 * time.Minute},
		{"by WRITE_TIMEOUT", 5 * time.Minute, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			small, logs := h.startReplicaWith(func(c *config.Config) {
				c.MaxBodyBytes, c.InFlightBytes, c.RetrieveChunkBytes = 32<<10, 32<<10, 32<<10
				c.SendStallTimeout, c.WriteTimeout = tc.stall, tc.write
			})
			resp, conn := stalledRetrieve(t, small, "/v1/retrieve?network=regtest&label=channel_manager", tok)
			defer conn.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)

			cut := waitForLog(t, logs, "retrieve cut short")
			require.Equal(t, "the client stopped taking bytes", cut["reason"])
			got, err := io.ReadAll(resp.Body)
			require.Error(t, err, "the server closed the stalled connection")
			require.Less(t, len(got), len(body))
			require.True(t, bytes.Equal(body[:len(got)], got))

			r := h.doURL(small, http.MethodGet, "/v1/retrieve?network=regtest&label=ping", map[string]string{"Authorization": tok}, nil)
			require.Equal(t, http.StatusOK, r.status, "the budget is free again: %s", r.body)
			require.Equal(t, "pong", string(r.body))
		})
	}
}

// stalledRetrieve sends a GET of path with token over a connection whose
// receive buffer is tiny, and reads the reply's head: the server's writes
// block soon after unless the caller reads the body.
func stalledRetrieve(t *testing.T, base, path, token string) (*http.Response, net.Conn) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	// Bounds a failure only: a test that goes wrong ends here, not hangs.
	require.NoError(t, conn.SetDeadline(time.Now().Add(time.Minute)))
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n", path, token)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	require.NoError(t, err)
	return resp, conn
}

// startReplicaWith starts another server on the same database with
// settings changed by configure. It returns the server's URL and every line
// it logs, decoded, for a test to wait on.
func (h *harness) startReplicaWith(configure func(*config.Config)) (string, <-chan map[string]any) {
	h.t.Helper()
	cfg := h.cfg
	configure(&cfg)
	logs := make(logLines, 1024)
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), h.clock)
	require.NoError(h.t, err)
	require.NoError(h.t, a.Start())
	h.t.Cleanup(func() { _ = a.Close() })
	return a.URL(), logs
}

// logLines passes each JSON line logged to it on; a line finding the
// channel full is dropped rather than stall the server.
type logLines chan map[string]any

func (l logLines) Write(p []byte) (int, error) {
	var m map[string]any
	if json.Unmarshal(p, &m) == nil {
		select {
		case l <- m:
		default:
		}
	}
	return len(p), nil
}

// waitForLog returns the first line logged with message msg.
func waitForLog(t *testing.T, logs <-chan map[string]any, msg string) map[string]any {
	t.Helper()
	// Bounds a failure only.
	fail := time.After(time.Minute)
	for {
		select {
		case m := <-logs:
			if m["msg"] == msg {
				return m
			}
		case <-fail:
			t.Fatalf("no %q logged", msg)
		}
	}
}

// TestRetrieveOfTheLatestRacingRetention: retention drops the version a
// retrieve of the latest found between the retrieve's read and its pin (a
// persist racing it with RETAIN_VERSIONS=1, which deletes the row). The
// retrieve looks again and answers the new
// latest version; a retrieve of the old version by number answers 404 "no
// longer held", then and afterwards.
func TestRetrieveOfTheLatestRacingRetention(t *testing.T) {
	t.Parallel()
	for _, drop := range []struct{ name, sql string }{
		{"row deleted", `DELETE FROM object_versions WHERE object_id = $1 AND version = 1`},
	} {
		t.Run(drop.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			h := newHarness(t, func(c *config.Config) { c.RetrieveChunkBytes, c.RetainVersions = testChunk, 1 })
			n := newNode(t)
			old, next := randomBytes(t, 3*testChunk+1), randomBytes(t, 2*testChunk)
			require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=channel_manager", old).status)
			auth := map[string]string{"Authorization": h.login(n)}
			var objectID int64
			require.NoError(t, h.pool.QueryRow(ctx, `SELECT id FROM objects`).Scan(&objectID))

			// A persist of version 2 with its retention, held open.
			tx, err := h.pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx)
			sum := sha256.Sum256(next)
			_, err = tx.Exec(ctx, `INSERT INTO object_versions (object_id, version, payload, size, sha256, created_at) VALUES ($1, 2, $2, $3, $4, now())`, objectID, next, len(next), sum[:])
			require.NoError(t, err)
			_, err = tx.Exec(ctx, `UPDATE objects SET latest_version = 2, size = $2, sha256 = $3 WHERE id = $1`, objectID, len(next), sum[:])
			require.NoError(t, err)
			_, err = tx.Exec(ctx, drop.sql, objectID)
			require.NoError(t, err)

			latest := h.getAsync("/v1/retrieve?network=regtest&label=channel_manager", auth)
			byNumber := h.getAsync("/v1/retrieve?network=regtest&label=channel_manager&version=1", auth)
			// Both found version 1 as it was before the persist, and their
			// pins wait for the persist's row lock on it.
			require.Eventually(t, func() bool {
				var waiting int
				err := h.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
				return err == nil && waiting == 2
			}, time.Minute, 10*time.Millisecond)
			require.NoError(t, tx.Commit(ctx))

			r := (<-latest).get(t)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			require.True(t, bytes.Equal(next, r.body), "the new latest version")
			msg := (<-byNumber).get(t).requireError(t, http.StatusNotFound)
			require.Contains(t, msg, "no longer held")
			msg = h.do(http.MethodGet, "/v1/retrieve?network=regtest&label=channel_manager&version=1", auth, nil).requireError(t, http.StatusNotFound)
			require.Contains(t, msg, "no longer held")
		})
	}
}

// asyncResponse is the outcome of a request sent from another goroutine,
// where a test must not fail.
type asyncResponse struct {
	response
	err error
}

func (a asyncResponse) get(t *testing.T) response {
	t.Helper()
	require.NoError(t, a.err)
	return a.response
}

// getAsync sends a GET of path in the background.
func (h *harness) getAsync(path string, header map[string]string) <-chan asyncResponse {
	out := make(chan asyncResponse, 1)
	go func() {
		req, err := http.NewRequest(http.MethodGet, h.url+path, nil)
		if err != nil {
			out <- asyncResponse{err: err}
			return
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := h.http.Do(req)
		if err != nil {
			out <- asyncResponse{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- asyncResponse{response{status: resp.StatusCode, header: resp.Header, body: b}, err}
	}()
	return out
}
