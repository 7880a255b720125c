package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/vss"
	"ldkbackup/internal/vsspb"
)

func vssUser(token string) vss.User {
	return vss.User{Tenant: &backup.Tenant{ID: 1, Slug: backup.DefaultTenantSlug}, Token: token}
}

func kv(key, value string, version int64) *vsspb.KeyValue {
	return &vsspb.KeyValue{Key: key, Value: []byte(value), Version: version}
}

// TestVSSUsageIsExactUnderConcurrentWrites: writes of one user from many
// connections at once (inserts, blind overwrites of other sizes, deletes,
// and requests that conflict and change nothing) leave its usage row equal
// to what it stores, and never take it past its objects quota.
func TestVSSUsageIsExactUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.NewPool(t)
	store := postgres.NewStore(pool)
	u := vssUser("concurrent")
	now := time.Now()
	limits := backup.WriteLimits{QuotaBytes: 1 << 30, QuotaObjects: 40}

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				key := fmt.Sprintf("k%d", (w+i)%6)
				var write vss.Write
				switch i % 4 {
				case 0:
					write = vss.Write{StoreID: "s", Puts: []*vsspb.KeyValue{kv(key, "v", 0)}}
				case 1:
					write = vss.Write{StoreID: "s", Puts: []*vsspb.KeyValue{kv(key, fmt.Sprintf("%0*d", i*3, 0), -1)}}
				case 2:
					write = vss.Write{StoreID: "s", Deletes: []*vsspb.KeyValue{kv(key, "", -1)}, MissingOK: true}
				case 3:
					// A put that conflicts (version 7 never matches) after
					// an insert: nothing of it stays.
					write = vss.Write{StoreID: "s", Puts: []*vsspb.KeyValue{kv(key+"x", "big", -1), kv(key, "v", 7)}}
				}
				_, err := store.PutVSS(ctx, u, write, now, limits)
				if err != nil {
					code := backup.ErrorCode(err)
					require.Contains(t, []string{backup.ECONFLICT, backup.EQUOTA}, code, "%v", err)
				}
			}
		}()
	}
	wg.Wait()

	checkVSSUsage(t, pool, u.Token)
	var xKeys int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM vss_objects WHERE key LIKE '%x'`).Scan(&xKeys))
	require.Zero(t, xKeys, "a request that conflicts leaves none of its items")

	// New keys at once against an objects quota with room for 5: exactly 5
	// are stored.
	var objects int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT objects FROM vss_users WHERE user_token = $1`, u.Token).Scan(&objects))
	limits.QuotaObjects = objects + 5
	var mu sync.Mutex
	stored := 0
	for w := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := store.PutVSS(ctx, u, vss.Write{StoreID: "q", Puts: []*vsspb.KeyValue{kv(fmt.Sprint("new", w), "v", 0)}}, now, limits)
			if err == nil {
				mu.Lock()
				stored++
				mu.Unlock()
				return
			}
			require.Equal(t, backup.EQUOTA, backup.ErrorCode(err), "%v", err)
		}()
	}
	wg.Wait()
	require.Equal(t, 5, stored)
	checkVSSUsage(t, pool, u.Token)
}

// checkVSSUsage asserts that a user's recorded usage equals what it stores.
func checkVSSUsage(t *testing.T, pool *pgxpool.Pool, token string) {
	t.Helper()
	var recBytes, storedBytes, recObjects, storedObjects int64
	require.NoError(t, pool.QueryRow(context.Background(), `
		SELECT u.bytes, u.objects, coalesce(sum(o.size), 0), count(o.key)
		FROM vss_users AS u LEFT JOIN vss_objects AS o ON o.user_id = u.id
		WHERE u.user_token = $1 GROUP BY u.id`, token).Scan(&recBytes, &recObjects, &storedBytes, &storedObjects))
	require.Equal(t, storedBytes, recBytes, "bytes")
	require.Equal(t, storedObjects, recObjects, "objects")
}

// TestVSSChunksBelongToTheValueFirstRead: a value read in chunks is read
// only while the key holds it: a write of the key (even a blind one, which
// keeps version 1) or a delete and a new write (a new row, also at version
// 1) stops the read instead of mixing two values.
func TestVSSChunksBelongToTheValueFirstRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.NewPool(t)
	store := postgres.NewStore(pool)
	u := vssUser("reader")
	now := time.Now()
	put := func(w vss.Write) {
		_, err := store.PutVSS(ctx, u, w, now, backup.WriteLimits{})
		require.NoError(t, err)
	}
	value := func(b byte) []byte { return bytes.Repeat([]byte{b}, 10_000) }
	put(vss.Write{Puts: []*vsspb.KeyValue{{Key: "k", Value: value('a'), Version: -1}}})

	for _, change := range []vss.Write{
		{Deletes: []*vsspb.KeyValue{{Key: "k", Version: -1}}}, // first: the new row has revision 1 too
		{Puts: []*vsspb.KeyValue{{Key: "k", Value: value('b'), Version: -1}}},
	} {
		buf := make([]byte, 4096)
		v, err := store.OpenVSSValue(ctx, u, "", "k", now, backup.ReadLimit{}, buf)
		require.NoError(t, err)
		require.EqualValues(t, 10_000, v.Size)
		require.Len(t, v.Head, 4096)
		chunk, err := store.ReadVSSChunk(ctx, v.ID, 4096, buf)
		require.NoError(t, err)
		require.Equal(t, v.Head[:1], chunk[:1], "a chunk of the same value")

		put(change)
		if len(change.Deletes) > 0 {
			put(vss.Write{Puts: []*vsspb.KeyValue{{Key: "k", Value: value('c'), Version: 0}}})
		}
		_, err = store.ReadVSSChunk(ctx, v.ID, 8192, buf)
		require.ErrorIs(t, err, vss.ErrValueChanged)
	}
}

// TestVSSAuthMarks: the replay guard's mark refuses a header older than the
// recorded one by more than the slack, is raised by a newer one (never
// lowered, and not written when it does not move), is per tenant, and housekeeping forgets marks older than the
// signature window.
func TestVSSAuthMarks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.NewPool(t)
	store := postgres.NewStore(pool)
	guard := store.VSSAuthMarks(backup.DefaultTenant)
	var two int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO tenants (slug, name, server_public_key, server_secret_sealed)
		VALUES ('two', 'Two', '\x02' || decode(repeat('11', 32), 'hex'), '\x00') RETURNING id`).Scan(&two))
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	admit := func(g postgres.VSSAuthMarks, token string, signed time.Time) bool {
		ok, err := g.Advance(ctx, token, signed.Add(2*time.Minute), signed)
		require.NoError(t, err)
		return ok
	}
	require.True(t, admit(guard, "k", t0))
	xmin := func() string {
		var x string
		require.NoError(t, pool.QueryRow(ctx, `SELECT xmin::text FROM vss_auth_marks WHERE tenant_id = 1 AND user_token = 'k'`).Scan(&x))
		return x
	}
	written := xmin()
	require.True(t, admit(guard, "k", t0), "the same header again")
	require.True(t, admit(guard, "k", t0.Add(-time.Minute)), "an older one within the slack")
	require.Equal(t, written, xmin(), "a mark that does not move is not written")
	require.True(t, admit(guard, "k", t0.Add(5*time.Minute)))
	require.False(t, admit(guard, "k", t0), "5 minutes older than the mark")
	require.True(t, admit(guard, "k", t0.Add(4*time.Minute)), "within the slack, and the mark stays")
	require.False(t, admit(guard, "k", t0.Add(2*time.Minute)))
	require.True(t, admit(store.VSSAuthMarks(backup.TenantID(two)), "k", t0), "another tenant's mark")
	require.True(t, admit(guard, "old", t0.Add(-3*time.Hour)))
	sw, err := store.Housekeep(ctx, t0.Add(10*time.Minute), postgres.Sweep{VSSSignatureWindow: time.Hour})
	require.NoError(t, err)
	require.EqualValues(t, 1, sw.VSSMarks)
	var left []string
	rows, err := pool.Query(ctx, `SELECT user_token FROM vss_auth_marks ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		left = append(left, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"k", "k"}, left)
}
