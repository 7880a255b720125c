package postgres

import (
	"context"
	"strings"
	"time"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/dbsqlc"
)

// ActivityAdd adds counts to a day's activity counters.
func (s *Store) ActivityAdd(ctx context.Context, day time.Time, tenant backup.TenantID, kind string, count, bytes int64) error {
	return interpretError(s.q.ActivityAdd(ctx, dbsqlc.ActivityAddParams{Day: day, TenantID: int64(tenant), Kind: kind, Count: count, Bytes: bytes}))
}

// PublishSettings records the server-wide defaults that reports fall back to.
func (s *Store) PublishSettings(ctx context.Context, settings map[string]int64, now time.Time) error {
	return s.WithTx(ctx, func(q *dbsqlc.Queries) error {
		for k, v := range settings {
			if err := q.SettingSet(ctx, dbsqlc.SettingSetParams{Key: k, Value: v, Now: now}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Ready reports whether the database answers, takes writes, and has every
// embedded migration applied: a replica of a newer release waits for its
// migration, and none is ready while there is no primary (a pooled
// connection may still reach a standby or a node made read-only).
func (s *Store) Ready(ctx context.Context) error {
	// goose's own table is not in the migrations, so sqlc cannot see it.
	// The functions are checked by name only: a release replaces their
	// bodies when it migrates, and replicas of the release before keep
	// serving with the new bodies during a rolling deploy.
	functions, err := functionNames()
	if err != nil {
		return err
	}
	var applied int64
	var writable bool
	var missing []string
	err = s.pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0),
		NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off',
		ARRAY(SELECT f FROM unnest($1::text[]) AS f
		      WHERE NOT EXISTS (SELECT 1 FROM pg_proc AS p WHERE p.pronamespace = 'public'::regnamespace AND p.proname = f))
		FROM goose_db_version WHERE is_applied`, functions).Scan(&applied, &writable, &missing)
	if err != nil {
		return interpretError(err)
	}
	if !writable {
		return unavailable()
	}
	want, err := LatestMigration()
	if err != nil {
		return err
	}
	if applied < want {
		return backup.Errorf(backup.EUNAVAILABLE, "database schema is at migration %d, this server needs %d", applied, want)
	}
	if len(missing) > 0 {
		return backup.Errorf(backup.EUNAVAILABLE, "database lacks the SQL functions %s of this server: run `server migrate`", strings.Join(missing, ", "))
	}
	return nil
}

// DatabaseSize is the database's size in bytes and each table's, with its
// indexes and TOAST.
func (s *Store) DatabaseSize(ctx context.Context) (total int64, tables map[string]int64, err error) {
	rows, err := s.q.DatabaseSize(ctx)
	if err != nil {
		return 0, nil, interpretError(err)
	}
	tables = make(map[string]int64, len(rows))
	for _, r := range rows {
		total = r.DatabaseBytes
		tables[r.TableName] = r.TableBytes
	}
	return total, tables, nil
}
