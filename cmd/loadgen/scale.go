package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"ldkbackup/internal/client"
)

// scaleScenario measures persist, list and restore with the database nearly
// empty, fills it with e.opts.scaleNodes nodes of e.opts.scaleObjects objects
// each, and measures them again on the same nodes. Every query of a node is
// an index look-up of that node's keys, so the ratios should stay near 1.
func scaleScenario(ctx context.Context, e *benchEnv) ([]report, error) {
	restoreNodes, err := e.storeRestoreNodes(ctx)
	if err != nil {
		return nil, err
	}
	listClients, err := e.loggedInClients(ctx, restoreNodes)
	if err != nil {
		return nil, err
	}
	persistNodes, err := newNodes(e.opts.nodes)
	if err != nil {
		return nil, err
	}
	plan := persistPlan{nodes: persistNodes, objectsPerNode: e.opts.objectsPerNode}

	empty, err := e.scalePhase(ctx, "empty", plan, restoreNodes, listClients)
	if err != nil {
		return nil, err
	}
	stored, err := e.prefill(ctx)
	if err != nil {
		return nil, err
	}
	full, err := e.scalePhase(ctx, "full", plan, restoreNodes, listClients)
	if err != nil {
		return nil, err
	}

	shapes := []report{
		{Scenario: "scale-persist-4KiB", Op: "persist", BodyBytes: 4 * kib, HTTPPerOp: 1},
		{Scenario: "scale-list", Op: "list", BodyBytes: 0, HTTPPerOp: 1},
		{Scenario: "scale-restore", Op: "restore", BodyBytes: restorePlaintext, HTTPPerOp: restoreHTTP},
	}
	for i := range shapes {
		shapes[i].Concurrency = e.opts.concurrency
		shapes[i].measurement = full[i]
		shapes[i].Empty = &empty[i]
		shapes[i].FullVsEmpty = compare(full[i], empty[i])
		shapes[i].StoredObjects = stored
	}
	return shapes, nil
}

// scalePhase measures persist, list and restore, in that order; phase
// (empty or full) names their profiles.
func (e *benchEnv) scalePhase(ctx context.Context, phase string, plan persistPlan, restoreNodes []benchNode, listClients []*client.Client) ([3]measurement, error) {
	var out [3]measurement
	var err error
	size := 4 * kib
	bodies := newBodySource(size, e.opts.presignMax)
	if out[0], err = e.measurePersist(ctx, "scale-persist-4KiB-"+phase, plan, bodies, e.spec(), e.poolSize(size)); err != nil {
		return out, err
	}
	e.noteServerRate(size, out[0].RPS)
	if out[1], err = e.measureServer(ctx, "scale-list-"+phase, e.spec(), listOp(listClients)); err != nil {
		return out, err
	}
	if out[2], err = e.measureServer(ctx, "scale-restore-"+phase, e.spec(), e.restoreOp(restoreNodes)); err != nil {
		return out, err
	}
	return out, nil
}

// listOp lists the objects of client seq%len(clients)'s node (a channel
// manager and 20 monitors).
func listOp(clients []*client.Client) operation {
	return func(ctx context.Context, seq int64) error {
		l, err := clients[seq%int64(len(clients))].List(ctx, "ldk")
		if err == nil && (len(l.List) != 1 || len(l.ChannelMonitors) != restoreMonitors) {
			err = fmt.Errorf("list: %d files and %d monitors, want 1 and %d", len(l.List), len(l.ChannelMonitors), restoreMonitors)
		}
		return err
	}
}

// prefillBatchNodes nodes are written per statement: large enough to be
// fast, small enough to show progress and keep each transaction modest.
const prefillBatchNodes = 10_000

// prefill writes e.opts.scaleNodes nodes with e.opts.scaleObjects objects
// each (a channel manager and monitors) of 32-byte bodies, generated in SQL,
// consistently across objects, object_versions, upload_hashes and
// node_usage, as persist_object would have left them. It returns the number
// of objects stored afterwards.
func (e *benchEnv) prefill(ctx context.Context) (int64, error) {
	start := time.Now()
	conn, err := e.prefillSession(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, prefillNodesSQL, e.opts.scaleNodes); err != nil {
		return 0, fmt.Errorf("prefill: node keys: %w", err)
	}
	now := time.Now()
	for first := 1; first <= e.opts.scaleNodes; first += prefillBatchNodes {
		last := min(first+prefillBatchNodes-1, e.opts.scaleNodes)
		if _, err := conn.Exec(ctx, prefillSQL, first, last, e.opts.scaleObjects, now); err != nil {
			return 0, fmt.Errorf("prefill nodes %d..%d: %w", first, last, err)
		}
		e.log.Info("prefill", "nodes", last, "of", e.opts.scaleNodes, "elapsed", time.Since(start).Round(time.Second))
	}
	// Fresh statistics and no dirty pages, so the measurements after this
	// pay neither for planning on stale estimates nor for the bulk write.
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) objects, object_versions, upload_hashes, node_usage"); err != nil {
		return 0, fmt.Errorf("vacuum after the prefill: %w", err)
	}
	checkpoint(ctx, e)
	var stored int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM objects").Scan(&stored); err != nil {
		return 0, err
	}
	e.log.Info("prefill done", "objects", stored, "took", time.Since(start).Round(time.Second))
	return stored, nil
}

// prefillSession is a connection of its own (its settings must not leak into
// a pool) for a bulk load: sorts in memory, and, when the role may, without
// the per-row foreign-key triggers, whose checks would only confirm what the
// SQL builds by construction (they halve the load's time).
func (e *benchEnv) prefillSession(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SET work_mem = '256MB'"); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		e.log.Warn("prefill with foreign-key checks (session_replication_role needs superuser): slower", "error", err)
	}
	return conn, nil
}

// prefillNodesSQL makes $1 node keys, numbered in key order. Keys are
// random-looking, as real ones are, but each batch takes a contiguous range
// of them, so every index grows at one place per batch instead of at random
// places all over: that is what makes two million rows take minutes, not
// tens of minutes. The keys are 33 bytes that are not real public keys (no
// request ever names them).
const prefillNodesSQL = `
CREATE TEMPORARY TABLE prefill_nodes AS
SELECT row_number() OVER (ORDER BY node_key) AS rn, node_key
FROM (SELECT '\x02'::bytea || sha256(int8send(n)) AS node_key
      FROM generate_series(1, $1::bigint) AS n) AS k`

// prefillSQL writes nodes $1..$2 of prefill_nodes with $3 objects each at
// time $4. Each object's body is a hash of its key, so bodies and their
// hashes are distinct per object, as the replay rule requires.
const prefillSQL = `
WITH src AS (
    SELECT p.node_key,
           CASE WHEN j = 0 THEN 'channel_manager' ELSE 'channel_monitor' END AS label,
           CASE WHEN j = 0 THEN '\x'::bytea ELSE sha256(p.node_key || int4send(j)) END AS channel_id
    FROM prefill_nodes AS p,
         generate_series(0, $3::int - 1) AS j
    WHERE p.rn BETWEEN $1 AND $2
), obj AS (
    INSERT INTO objects (tenant_id, node_key, network, label, channel_id, latest_version, size, sha256, created_at, updated_at)
    SELECT 1, node_key, 'regtest', label, channel_id, 1, 32,
           sha256(sha256('\x01'::bytea || node_key || convert_to(label, 'UTF8') || channel_id)), $4, $4
    FROM src
    ORDER BY node_key, label, channel_id
    RETURNING id, node_key, label, channel_id, size, sha256
), versions AS (
    INSERT INTO object_versions (object_id, version, payload, size, sha256, created_at)
    SELECT id, 1, sha256('\x01'::bytea || node_key || convert_to(label, 'UTF8') || channel_id), size, sha256, $4
    FROM obj
    ORDER BY id
), usage AS (
    INSERT INTO node_usage (tenant_id, node_key, bytes, objects, uploads, first_seen)
    SELECT 1, node_key, sum(size), count(*), count(*), $4
    FROM obj
    GROUP BY node_key
    ORDER BY node_key
    RETURNING id, node_key
)
INSERT INTO upload_hashes (node_id, digest, day)
SELECT u.id, encode(substring(o.sha256 FROM 1 FOR 16), 'hex')::uuid, ($4::timestamptz AT TIME ZONE 'UTC')::date - date '1970-01-01'
FROM obj AS o
JOIN usage AS u ON u.node_key = o.node_key
ORDER BY u.id`
