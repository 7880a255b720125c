package activity_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/activity"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
)

func TestRecorderFlushesOneUpsertPerDayTenantKind(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t)
	now := time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	rec := activity.NewRecorder(postgres.NewStore(pool), clock, slog.New(slog.NewTextHandler(io.Discard, nil)))

	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); rec.Add(backup.DefaultTenant, backup.EventRetrieve, 100) }()
	}
	wg.Wait()
	rec.Add(backup.DefaultTenant, backup.EventLogin, 0)
	require.NoError(t, rec.Flush(context.Background()))
	now = now.Add(2 * time.Minute) // the next UTC day
	rec.Add(backup.DefaultTenant, backup.EventRetrieve, 7)
	require.NoError(t, rec.Flush(context.Background()))
	require.NoError(t, rec.Flush(context.Background()), "nothing pending is fine")

	rows := counters(t, pool)
	require.Equal(t, []counter{
		{"2026-11-26", "login", 1, 0},
		{"2026-11-26", "retrieve", 50, 5000},
		{"2026-11-27", "retrieve", 1, 7},
	}, rows)
}

func TestRecorderKeepsCountsWhenAFlushFails(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t)
	store := &failingStore{Store: postgres.NewStore(pool), fail: true}
	rec := activity.NewRecorder(store, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec.Add(backup.DefaultTenant, backup.EventLogin, 0)
	require.Error(t, rec.Flush(context.Background()))
	store.fail = false
	rec.Add(backup.DefaultTenant, backup.EventLogin, 0)
	require.NoError(t, rec.Flush(context.Background()))
	rows := counters(t, pool)
	require.Len(t, rows, 1)
	require.EqualValues(t, 2, rows[0].count, "the failed flush's count was kept")
}

// failingStore refuses writes while fail is set, as an unreachable
// database would; the rows still land in the real one afterwards.
type failingStore struct {
	*postgres.Store
	fail bool
}

func (s *failingStore) ActivityAdd(ctx context.Context, day time.Time, tenant backup.TenantID, kind string, count, bytes int64) error {
	if s.fail {
		return errors.New("database unreachable")
	}
	return s.Store.ActivityAdd(ctx, day, tenant, kind, count, bytes)
}

type counter struct {
	day   string
	kind  string
	count int64
	bytes int64
}

func counters(t *testing.T, pool *pgxpool.Pool) []counter {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT to_char(day, 'YYYY-MM-DD'), kind, count, bytes FROM activity_daily ORDER BY day, kind`)
	require.NoError(t, err)
	defer rows.Close()
	var out []counter
	for rows.Next() {
		var c counter
		require.NoError(t, rows.Scan(&c.day, &c.kind, &c.count, &c.bytes))
		out = append(out, c)
	}
	return out
}

// BenchmarkRecorderAdd is the per-request cost of counting activity, to set
// against a persist (~1.3 ms of BenchmarkPersist on the 2-core machine).
func BenchmarkRecorderAdd(b *testing.B) {
	rec := activity.NewRecorder(nil, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec.Add(backup.DefaultTenant, backup.EventRetrieve, 1024)
		}
	})
}
