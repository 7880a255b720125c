package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rawDB is the baseline: what PostgreSQL itself does with the same bytes
// through plain pgx, with none of the server's work (HTTP, signatures,
// tenants, tokens, versions, quotas, replay checks). Its tables are copies of
// the server's (LIKE ... INCLUDING ALL: columns, checks, indexes, TOAST
// storage; not the foreign keys), in the bench database.
type rawDB struct {
	pool *pgxpool.Pool
}

// rawRestoreStride: node n's objects in the restore baseline are object ids
// n*rawRestoreStride + j, so its "list" is one index range.
const rawRestoreStride = 32

func openRaw(ctx context.Context, dbURL string, conns int) (*rawDB, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	// One connection per client and synchronous commit, whatever the role's
	// or server's defaults: the physical limit of durable writes.
	cfg.MaxConns = int32(conns)
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "ldkbackup-loadgen-raw"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := &rawDB{pool: pool}
	if err := r.createTables(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return r, nil
}

func (r *rawDB) close() { r.pool.Close() }

func (r *rawDB) createTables(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, `
CREATE TABLE IF NOT EXISTS raw_object_versions (LIKE object_versions INCLUDING ALL);
CREATE TABLE IF NOT EXISTS raw_auth_challenges (LIKE auth_challenges INCLUDING ALL);
CREATE TABLE IF NOT EXISTS raw_auth_sessions (LIKE auth_sessions INCLUDING ALL);
CREATE TABLE IF NOT EXISTS raw_vss_objects (LIKE vss_objects INCLUDING ALL);`)
	if err != nil {
		return fmt.Errorf("create the raw baseline tables: %w", err)
	}
	return nil
}

// dropTables removes the raw tables from a database that is kept.
func (r *rawDB) dropTables(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, `DROP TABLE IF EXISTS raw_object_versions, raw_auth_challenges, raw_auth_sessions, raw_vss_objects`)
	return err
}

// reset empties the raw tables: each baseline starts from empty tables, as
// the server's scenarios start with few rows, and the disk does not fill up.
func (r *rawDB) reset(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, `TRUNCATE raw_object_versions, raw_auth_challenges, raw_auth_sessions, raw_vss_objects`)
	return err
}

// insertVersion is one durable INSERT in its own transaction.
func (r *rawDB) insertVersion(ctx context.Context, objectID, version int64, payload []byte, sum []byte) error {
	_, err := r.pool.Exec(ctx, `
INSERT INTO raw_object_versions (object_id, version, payload, size, sha256, created_at)
VALUES ($1, $2, $3, $4, $5, now())`, objectID, version, payload, len(payload), sum)
	return err
}

// readVersion reads one payload by primary key.
func (r *rawDB) readVersion(ctx context.Context, objectID int64) ([]byte, error) {
	var payload []byte
	err := r.pool.QueryRow(ctx, `SELECT payload FROM raw_object_versions WHERE object_id = $1 AND version = 1`, objectID).Scan(&payload)
	return payload, err
}

// seed writes version 1 of each object id in ids with a body from bodies,
// in one transaction (setup, not measured).
func (r *rawDB) seed(ctx context.Context, ids []int64, bodies *bodySource) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		for i, id := range ids {
			body := bodies.body(i % bodies.n)
			sum := sha256.Sum256(body)
			if _, err := tx.Exec(ctx, `
INSERT INTO raw_object_versions (object_id, version, payload, size, sha256, created_at)
VALUES ($1, 1, $2, $3, $4, now())
ON CONFLICT DO NOTHING`, id, body, len(body), sum[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// restore is the database work a restore cannot avoid: the login's two
// durable writes (store a challenge; consume it and store a session), the
// list (one index range) and one read by primary key per object.
func (r *rawDB) restore(ctx context.Context, node int, nodeKey []byte, objects int) error {
	var challenge, token [32]byte
	_, _ = rand.Read(challenge[:])
	_, _ = rand.Read(token[:])
	if _, err := r.pool.Exec(ctx, `
INSERT INTO raw_auth_challenges (challenge, tenant_id, node_key, created_at, expires_at)
VALUES ($1, 1, $2, now(), now() + interval '60 seconds')`, challenge[:], nodeKey); err != nil {
		return err
	}
	if _, err := r.pool.Exec(ctx, `
WITH consumed AS (
    DELETE FROM raw_auth_challenges WHERE challenge = $1 RETURNING tenant_id, node_key
)
INSERT INTO raw_auth_sessions (token_hash, tenant_id, node_key, created_at, expires_at)
SELECT $2, tenant_id, node_key, now(), now() + interval '5 minutes' FROM consumed`, challenge[:], token[:]); err != nil {
		return err
	}
	first := int64(node * rawRestoreStride)
	rows, err := r.pool.Query(ctx, `
SELECT object_id FROM raw_object_versions
WHERE object_id >= $1 AND object_id < $2 ORDER BY object_id`, first, first+rawRestoreStride)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	if len(ids) != objects {
		return fmt.Errorf("raw restore: listed %d objects, want %d", len(ids), objects)
	}
	for _, id := range ids {
		if _, err := r.readVersion(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// vssPut is a VSS put of version -1 as one statement: the upsert of the
// key's row, version 1 whatever it was, with none of vss_put's version
// checks, usage row or quota.
func (r *rawDB) vssPut(ctx context.Context, userID int64, storeID, key string, value []byte) error {
	_, err := r.pool.Exec(ctx, `
INSERT INTO raw_vss_objects AS o (user_id, store_id, key, value, size, version, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, 1, now(), now())
ON CONFLICT (user_id, store_id, key) DO UPDATE
SET value = EXCLUDED.value, size = EXCLUDED.size, version = 1, revision = o.revision + 1, updated_at = now()`,
		userID, storeID, key, value, len(value))
	return err
}

// vssGet reads one value and its version by primary key.
func (r *rawDB) vssGet(ctx context.Context, userID int64, storeID, key string) ([]byte, int64, error) {
	var value []byte
	var version int64
	err := r.pool.QueryRow(ctx, `
SELECT value, version FROM raw_vss_objects WHERE user_id = $1 AND store_id = $2 AND key = $3`,
		userID, storeID, key).Scan(&value, &version)
	return value, version, err
}

// vssList pages through a store's keys as listKeyVersions does: newest
// created first, one statement per page of vssPageSize keys, each reading
// one row more to tell whether another page follows.
func (r *rawDB) vssList(ctx context.Context, userID int64, storeID string) ([]string, error) {
	var keys []string
	before := int64(math.MaxInt64)
	for {
		rows, err := r.pool.Query(ctx, `
SELECT key, seq FROM raw_vss_objects
WHERE user_id = $1 AND store_id = $2 AND seq < $3
ORDER BY seq DESC LIMIT $4`, userID, storeID, before, vssPageSize+1)
		if err != nil {
			return nil, err
		}
		type row struct {
			Key string
			Seq int64
		}
		page, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			return nil, err
		}
		more := len(page) > vssPageSize
		page = page[:min(len(page), vssPageSize)]
		for _, p := range page {
			keys = append(keys, p.Key)
		}
		if !more {
			return keys, nil
		}
		before = page[len(page)-1].Seq
	}
}

// vssSeed writes rows of the stores the read baselines read, in one
// transaction (setup, not measured): keys of user u are keys(u), with
// bodies from bodies in turn.
func (r *rawDB) vssSeed(ctx context.Context, users int, storeID string, keys []string, bodies *bodySource) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		i := 0
		for u := range users {
			for _, key := range keys {
				body := bodies.body(i % bodies.n)
				i++
				if _, err := tx.Exec(ctx, `
INSERT INTO raw_vss_objects (user_id, store_id, key, value, size, version, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, 1, now(), now())`, int64(u), storeID, key, body, len(body)); err != nil {
					return err
				}
			}
		}
		return analyze(ctx, tx, "raw_vss_objects")
	})
}
