package app_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/postgres"
)

// waitFor polls cond until it holds. The minute is a bound for a test that
// would otherwise hang, never a budget a passing run comes near.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		case <-poll.C:
		}
	}
}

// TestBurstIsPacedNotRefused: a node that sends more persists at once than
// its allowance has them all stored. Those past the allowance wait for
// their turn (on the test's clock) instead of getting 429, which the
// Android client would turn into lost backups.
func TestBurstIsPacedNotRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.RatePerNodePerMinute = 120 })
	n := newNode(t)
	const monitors = 150
	var done atomic.Int64
	statuses := make(chan int, monitors)
	var wg sync.WaitGroup
	for i := range monitors {
		wg.Add(1)
		body := randomBytes(t, 256)
		go func() {
			defer wg.Done()
			statuses <- h.persistRaw(n, fmt.Sprintf("network=regtest&label=channel_monitor&channelId=%064x", i), body).status
			done.Add(1)
		}()
	}
	// Every persist either finished or waits for its turn: the allowance is
	// 120 from rest, then one every half second, so 30 wait (fewer when the
	// burst arrives slowly enough for turns to come by real time).
	waitFor(t, "the burst to be stored or paced", func() bool {
		return done.Load()+int64(h.clock.Sleepers()) == monitors
	})
	h.clock.Advance(15 * time.Second) // the last turn is 15 s after the burst
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	require.Equal(t, map[int]int{http.StatusOK: monitors}, counts)
	_, objects := h.usage(n)
	require.EqualValues(t, monitors, objects)
	require.Equal(t, monitors, h.count("object_versions"))

	// The wait is timed as it starts; the paced event is counted as its
	// request ends, once the reply is out: wait until every wait is.
	waits := regexp.MustCompile(`(?m)^ldkbackup_paced_wait_seconds_count (\d+)$`)
	events := regexp.MustCompile(`(?m)^ldkbackup_events_total\{kind="paced",protocol="v1",tenant="default"\} (\d+)$`)
	var paced string
	waitFor(t, "every paced persist counted as an event of its tenant", func() bool {
		m := h.metrics()
		w, e := waits.FindStringSubmatch(m), events.FindStringSubmatch(m)
		if w == nil || e == nil || w[1] != e[1] {
			return false
		}
		paced = w[1]
		return true
	})
	require.NoError(t, h.app.FlushActivity(context.Background()))
	var reported int
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT coalesce(sum(count), 0) FROM activity_daily WHERE kind = 'paced'`).Scan(&reported))
	require.Positive(t, reported, "some persists waited for their turn")
	require.LessOrEqual(t, reported, 30)
	require.Equal(t, paced, fmt.Sprint(reported), "metrics count the paced persists as reports do")
}

// TestPacingHasABound: a persist whose turn is further away than
// PACE_MAX_WAIT is refused at once with 429 and Retry-After, stores nothing
// and takes no turn; one within the bound waits and is stored.
func TestPacingHasABound(t *testing.T) {
	t.Parallel()
	// 3 a minute: a turn every 20 s; a wait of up to 30 s is allowed.
	h := newHarness(t, func(c *config.Config) { c.RatePerNodePerMinute = 3; c.PaceMaxWait = 30 * time.Second })
	h.clock.Freeze() // turns are exactly 20 s apart, and Retry-After exactly 40
	n := newNode(t)
	persist := func(label string) response {
		return h.persistRaw(n, "network=regtest&label="+label, randomBytes(t, 64))
	}
	for _, label := range []string{"ping", "peers", "addresses"} {
		require.Equal(t, http.StatusOK, persist(label).status)
	}
	waiting := make(chan response, 1)
	go func() { waiting <- persist("payment_ids") }() // its turn is 20 s away
	waitFor(t, "the fourth persist to wait for its turn", func() bool { return h.clock.Sleepers() == 1 })

	before := h.snapshot()
	r := persist("spendable_outputs") // 40 s away: past the bound
	r.requireError(t, http.StatusTooManyRequests)
	require.Equal(t, 40, r.requireRetryAfter(t))
	require.Equal(t, before, h.snapshot())

	h.clock.Advance(20 * time.Second)
	require.Equal(t, http.StatusOK, (<-waiting).status)
	// The refused persist took no turn: the next one is 20 s after the
	// paced one, within the bound.
	go func() { waiting <- persist("spendable_outputs") }()
	waitFor(t, "the next persist to wait for its turn", func() bool { return h.clock.Sleepers() == 1 })
	h.clock.Advance(20 * time.Second)
	require.Equal(t, http.StatusOK, (<-waiting).status)
	_, objects := h.usage(n)
	require.EqualValues(t, 5, objects)

	// Each wait counts as a paced event of the tenant (once its request
	// ends) and in the wait histogram, never as the server's latency: on
	// the frozen clock the six persists took no time of the server's own.
	waitFor(t, "both paced persists counted", func() bool {
		return strings.Contains(h.metrics(), `ldkbackup_events_total{kind="paced",protocol="v1",tenant="default"} 2`+"\n")
	})
	m := h.metrics()
	require.Contains(t, m, "ldkbackup_paced_wait_seconds_sum 40\n")
	require.Contains(t, m, `ldkbackup_http_request_duration_seconds_bucket{protocol="v1",route="/persist",tenant="default",le="0.001"} 6`+"\n")
}

// TestDeletionRacingPersistsLeavesUsageTrue: account deletions that race
// persists of new objects leave the node's usage equal to what it stores.
func TestDeletionRacingPersistsLeavesUsageTrue(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := newNode(t)
	tok := map[string]string{"Authorization": h.login(n)}
	for round := range 30 {
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			body := randomBytes(t, 100+i)
			go func() {
				defer wg.Done()
				h.persistRaw(n, fmt.Sprintf("network=regtest&label=channel_monitor&channelId=%064x", round*10+i), body)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.do(http.MethodDelete, "/v1/account?network=regtest", tok, nil)
		}()
		wg.Wait()
	}
	var bytes, objects, storedBytes, storedObjects int64
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT bytes, objects FROM node_usage`).Scan(&bytes, &objects))
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT coalesce(sum(size), 0), count(*) FROM objects`).Scan(&storedBytes, &storedObjects))
	require.Equal(t, [2]int64{storedBytes, storedObjects}, [2]int64{bytes, objects})
	drift, err := postgres.NewStore(h.pool).CheckUsage(context.Background(), 0, nil, false)
	require.NoError(t, err)
	require.Empty(t, drift)
}

// TestUploadHistoryIsCountedAndBounded: each distinct upload is remembered
// (for the replay rule) and counted against the node; past QUOTA_UPLOADS a
// persist is refused (403) and stores nothing; uploads older than
// UPLOAD_HISTORY_DAYS are forgotten and no longer counted.
func TestUploadHistoryIsCountedAndBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.QuotaUploads = 3; c.RetainVersions = 1 })
	n := newNode(t)
	first := randomBytes(t, 50)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", first).status)
	for range 2 {
		require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 50)).status)
	}
	var uploads int64
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT uploads FROM node_usage`).Scan(&uploads))
	require.EqualValues(t, 3, uploads)
	require.Equal(t, 1, h.count("object_versions"), "RETAIN_VERSIONS=1 keeps one version row")

	before := h.snapshot()
	r := h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 50))
	r.requireError(t, http.StatusForbidden)
	require.JSONEq(t, `{"error":"quota exceeded","quota":"uploads","limit":3,"used":3,"requested":1}`, string(r.body))
	require.Equal(t, before, h.snapshot())

	// The first upload ages past the history: housekeeping forgets it and
	// frees its place; its bytes are no longer refused as a replay.
	_, err := h.pool.Exec(context.Background(), `UPDATE upload_hashes SET day = day - 400 WHERE node_id = (SELECT id FROM node_usage) AND digest = encode(substring(sha256($1) FROM 1 FOR 16), 'hex')::uuid`, first)
	require.NoError(t, err)
	sw, err := postgres.NewStore(h.pool).Housekeep(context.Background(), h.clock.Now(), postgres.Sweep{UploadHistoryDays: 365})
	require.NoError(t, err)
	require.EqualValues(t, 1, sw.Forgotten)
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT uploads FROM node_usage`).Scan(&uploads))
	require.EqualValues(t, 2, uploads)
	require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=peers", first).status)
}

// TestUsageCheckFindsAndRepairsDrift: the check reports a node whose
// recorded usage differs from what it stores, and repairs it on request.
func TestUsageCheckFindsAndRepairsDrift(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := newNode(t), newNode(t)
	for _, n := range []node{a, b} {
		require.Equal(t, http.StatusOK, h.persistRaw(n, "network=regtest&label=ping", randomBytes(t, 70)).status)
	}
	store := postgres.NewStore(h.pool)
	drift, err := store.CheckUsage(context.Background(), 0, nil, false)
	require.NoError(t, err)
	require.Empty(t, drift)

	_, err = h.pool.Exec(context.Background(), `UPDATE node_usage SET bytes = bytes + 500, objects = objects + 2, uploads = uploads - 1 WHERE node_key = decode($1, 'hex')`, a.pub)
	require.NoError(t, err)
	drift, err = store.CheckUsage(context.Background(), 0, nil, false)
	require.NoError(t, err)
	require.Len(t, drift, 1)
	require.Equal(t, a.pub, drift[0].Node.String())
	require.Equal(t, postgres.UsageDrift{
		Tenant: backup.DefaultTenant, Node: drift[0].Node,
		RecordedBytes: 570, RecordedObjects: 3, RecordedUploads: 0,
		StoredBytes: 70, StoredObjects: 1, StoredUploads: 1,
	}, drift[0])
	key := drift[0].Node
	drift, err = store.CheckUsage(context.Background(), backup.DefaultTenant, &key, true)
	require.NoError(t, err)
	require.Len(t, drift, 1, "the repair reports what it repaired")
	drift, err = store.CheckUsage(context.Background(), 0, nil, false)
	require.NoError(t, err)
	require.Empty(t, drift)
	bytes, objects := h.usage(a)
	require.Equal(t, [2]int64{70, 1}, [2]int64{bytes, objects})
}
