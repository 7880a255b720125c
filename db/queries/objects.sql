-- name: ObjectPersist :one
-- One round trip: every rule of a write is in db/functions/persist_object.sql.
SELECT p.outcome::text AS outcome, p.version::bigint AS version, p.wait_ms::bigint AS wait_ms
FROM persist_object(@tenant_id::bigint, @node_key::bytea, @network::text, @label::text, @channel_id::bytea,
                    @payload::bytea, @sha256::bytea, @now::timestamptz, @retain::integer, @allow_replay::boolean,
                    @node_rate_key::text, @node_rate_limit::integer, @pace_max_ms::bigint,
                    @new_node_key::text, @new_node_limit::integer,
                    @quota_bytes::bigint, @quota_objects::integer, @quota_uploads::bigint) AS p;

-- name: ObjectGetPayload :one
-- One version of an object (@version = 0: the latest): found is false when
-- there is none, and a found version with a NULL payload is one that
-- retention has deleted (at most the latest version, but no row). With @rate_limit > 0 the same round trip counts the
-- read against @rate_key and refuses it past the limit (rate_count); the
-- count is the preserved side of the LEFT JOIN, so a read of a missing
-- object is counted too.
SELECT coalesce(r.found, false)::boolean AS found, r.payload
FROM rate_count(@rate_key::text, @now::timestamptz, @window_seconds::integer, @rate_limit::integer) AS hit
LEFT JOIN LATERAL (
    SELECT true AS found, v.payload
    FROM objects AS o
    LEFT JOIN object_versions AS v
      ON v.object_id = o.id
     AND v.version = CASE WHEN @version::bigint = 0 THEN o.latest_version ELSE @version::bigint END
    WHERE o.tenant_id = @tenant_id
      AND o.node_key = @node_key
      AND o.network = @network
      AND o.label = @label
      AND o.channel_id = @channel_id
      AND @version::bigint <= o.latest_version
) AS r ON true;

-- name: ObjectVersionOpen :one
-- The first read of a retrieve, in one round trip as ObjectGetPayload: it
-- counts the read against @rate_key (rate_count is the preserved side of the
-- LEFT JOIN, so a read of a missing object is counted too) and finds the
-- version (@version = 0: the latest). found: the object has this version;
-- held: its row is still there (retention deletes old ones). A version of at
-- most @chunk_bytes comes back whole in data; a larger one's data is NULL and
-- ObjectVersionPin reads its head. Keeping the pin out of this statement
-- keeps the common read a plain SELECT.
SELECT coalesce(r.found, false)::boolean AS found,
       coalesce(r.object_id, 0)::bigint AS object_id,
       coalesce(r.version, 0)::bigint AS version,
       coalesce(r.size, 0)::bigint AS size,
       coalesce(r.held, false)::boolean AS held,
       r.data::bytea AS data
FROM rate_count(@rate_key::text, @now::timestamptz, @window_seconds::integer, @rate_limit::integer) AS hit
LEFT JOIN LATERAL (
    SELECT true AS found, o.id AS object_id, rv.version, v.size, (v.object_id IS NOT NULL) AS held,
           CASE WHEN v.size <= @chunk_bytes::integer THEN v.payload END AS data
    FROM objects AS o
    CROSS JOIN LATERAL (
        SELECT CASE WHEN @version::bigint = 0 THEN o.latest_version ELSE @version::bigint END AS version
    ) AS rv
    LEFT JOIN object_versions AS v ON v.object_id = o.id AND v.version = rv.version
    WHERE o.tenant_id = @tenant_id
      AND o.node_key = @node_key
      AND o.network = @network
      AND o.label = @label
      AND o.channel_id = @channel_id
      AND rv.version <= o.latest_version
) AS r ON true;

-- name: ObjectVersionPin :one
-- Pins a version larger than a retrieve's buffer until @pin_until and reads
-- its first @chunk_bytes. Retention skips pinned versions; one that ran
-- first deleted the row (no row here), and one running meanwhile re-checks
-- the pinned row under READ COMMITTED and skips it. greatest keeps the later
-- of two streams' pins. A lost pin costs nothing, so its commit does not wait
-- for the WAL (set_config, as in rate_count).
UPDATE object_versions AS v
SET pinned_until = greatest(v.pinned_until, @pin_until::timestamptz)
WHERE v.object_id = @object_id AND v.version = @version AND v.payload IS NOT NULL
  AND set_config('synchronous_commit', 'off', true) = 'off'
RETURNING substring(v.payload FROM 1 FOR @chunk_bytes::integer)::bytea AS head;

-- name: ObjectVersionChunk :one
-- @length bytes of a version's payload from byte @start (1 is the first),
-- reading only the TOAST chunks they lie in (the payload is stored
-- EXTERNAL, uncompressed). No row: the bytes are no longer held. A
-- version's bytes never change, so chunks read by separate statements
-- make up one version.
SELECT substring(payload FROM @start::integer FOR @length::integer)::bytea AS chunk
FROM object_versions
WHERE object_id = @object_id AND version = @version AND payload IS NOT NULL;

-- name: ObjectVersionLastChunk :one
-- ObjectVersionChunk for a version's last chunk, ending the retrieve's pin
-- in the same round trip (as ObjectVersionUnpin does). The SELECT reads the
-- row as it was before the UPDATE, so the pin ends after the read.
WITH unpin AS (
    UPDATE object_versions AS u
    SET pinned_until = NULL
    WHERE u.object_id = @object_id AND u.version = @version AND u.pinned_until = @pin_until::timestamptz
      AND set_config('synchronous_commit', 'off', true) = 'off'
)
SELECT substring(v.payload FROM @start::integer FOR @length::integer)::bytea AS chunk
FROM object_versions AS v
WHERE v.object_id = @object_id AND v.version = @version AND v.payload IS NOT NULL;

-- name: ObjectVersionUnpin :exec
-- Ends a retrieve's pin, unless a later stream of the same version pinned it
-- further. Best effort: a pin not ended expires at pinned_until, so its
-- commit does not wait for the WAL.
UPDATE object_versions
SET pinned_until = NULL
WHERE object_id = @object_id AND version = @version AND pinned_until = @pin_until::timestamptz
  AND set_config('synchronous_commit', 'off', true) = 'off';

-- name: ObjectListKeys :many
-- Reads only this node's index range, whatever the size of the table. With
-- @rate_limit > 0 the same round trip counts the list against @rate_key
-- (rate_count, as ObjectGetPayload does); the count is the preserved side of
-- the LEFT JOIN, so a node with no objects gets one row with found false.
SELECT (o.label IS NOT NULL)::boolean AS found,
       coalesce(o.label, '')::text AS label,
       coalesce(o.channel_id, ''::bytea)::bytea AS channel_id
FROM rate_count(@rate_key::text, @now::timestamptz, @window_seconds::integer, @rate_limit::integer) AS hit
LEFT JOIN LATERAL (
    SELECT label, channel_id
    FROM objects
    WHERE tenant_id = @tenant_id
      AND node_key = @node_key
      AND network = @network
) AS o ON true
ORDER BY 2, 3;

-- name: ObjectVersionList :many
-- An object's history, newest first, from below version @before.
SELECT v.version, v.size, v.sha256, v.created_at, (v.payload IS NOT NULL)::boolean AS held
FROM objects AS o
JOIN object_versions AS v ON v.object_id = o.id
WHERE o.tenant_id = @tenant_id
  AND o.node_key = @node_key
  AND o.network = @network
  AND o.label = @label
  AND o.channel_id = @channel_id
  AND v.version < @before
ORDER BY v.version DESC
LIMIT @max_rows;

-- name: ObjectDeleteNodeNetwork :one
-- Deletes every object of a node on a network (their versions go with them,
-- ON DELETE CASCADE) and frees their quota, in one statement: the usage is
-- lowered by exactly what the DELETE removed, so a persist racing the
-- deletion is either removed with its usage or kept with it. The node's
-- upload history stays, so captured uploads cannot be replayed into a new
-- account. versions and held_bytes read the statement's snapshot.
WITH gone AS (
    DELETE FROM objects AS o
    WHERE o.tenant_id = @tenant_id
      AND o.node_key = @node_key
      AND o.network = @network
    RETURNING o.id, o.size
), freed AS (
    UPDATE node_usage AS u
    SET bytes = u.bytes - (SELECT coalesce(sum(size), 0) FROM gone),
        objects = u.objects - (SELECT count(*) FROM gone)
    WHERE u.tenant_id = @tenant_id AND u.node_key = @node_key
    RETURNING u.bytes
)
SELECT (SELECT count(*) FROM gone)::bigint AS objects,
       (SELECT coalesce(sum(size), 0) FROM gone)::bigint AS latest_bytes,
       count(v.*)::bigint AS versions,
       coalesce(sum(v.size), 0)::bigint AS held_bytes,
       (SELECT count(*) FROM freed)::bigint AS usage_rows
FROM object_versions AS v
WHERE v.object_id IN (SELECT id FROM gone);

-- name: ObjectCountByNetwork :many
SELECT network, count(*)::bigint AS objects, max(updated_at)::timestamptz AS last_write
FROM objects
WHERE tenant_id = @tenant_id AND node_key = @node_key
GROUP BY network
ORDER BY network;
