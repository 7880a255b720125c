-- name: VSSPut :one
-- One round trip: every rule of a VSS write is in db/functions/vss_put.sql.
SELECT p.outcome::text AS outcome, p.wait_ms::bigint AS wait_ms
FROM vss_put(@tenant_id::bigint, @user_token::text, @store_id::text,
             @put_keys::text[], @put_values::bytea[], @put_versions::bigint[], sqlc.narg(global_version)::bigint,
             @delete_keys::text[], @delete_versions::bigint[], @missing_ok::boolean, @now::timestamptz,
             @rate_key::text, @rate_limit::integer, @pace_max_ms::bigint,
             @new_user_key::text, @new_user_limit::integer,
             @quota_bytes::bigint, @quota_objects::integer) AS p;

-- name: VSSObjectOpen :one
-- A getObject's first read, in one round trip that also counts the read
-- against @rate_key (rate_count is the preserved side of the LEFT JOIN, so a
-- read of a missing key is counted too): the key's version and size, and
-- its first @chunk_bytes bytes (all of a value of at most that size). seq
-- and revision name this value for the chunks read after it.
SELECT coalesce(r.found, false)::boolean AS found,
       coalesce(r.user_id, 0)::bigint AS user_id,
       coalesce(r.version, 0)::bigint AS version,
       coalesce(r.size, 0)::bigint AS size,
       coalesce(r.seq, 0)::bigint AS seq,
       coalesce(r.revision, 0)::bigint AS revision,
       r.head::bytea AS head
FROM rate_count(@rate_key::text, @now::timestamptz, @window_seconds::integer, @rate_limit::integer) AS hit
LEFT JOIN LATERAL (
    SELECT true AS found, o.user_id, o.version, o.size, o.seq, o.revision,
           substring(o.value FROM 1 FOR @chunk_bytes::integer) AS head
    FROM vss_users AS u
    JOIN vss_objects AS o ON o.user_id = u.id
    WHERE u.tenant_id = @tenant_id AND u.user_token = @user_token
      AND o.store_id = @store_id AND o.key = @key
) AS r ON true;

-- name: VSSObjectChunk :one
-- @length bytes of a value from byte @start (1 is the first), reading only
-- the TOAST chunks they lie in (the value is stored EXTERNAL), and only if
-- the row is still the one VSSObjectOpen read (same seq and revision): no
-- row when it was written or deleted since.
SELECT substring(o.value FROM @start::integer FOR @length::integer)::bytea AS data
FROM vss_objects AS o
WHERE o.user_id = @user_id AND o.store_id = @store_id AND o.key = @key
  AND o.seq = @seq::bigint AND o.revision = @revision::bigint;

-- name: VSSKeyList :many
-- One page of listKeyVersions in one statement, so the global version and
-- the keys come from one snapshot, and counted against @rate_key in the
-- same round trip (the preserved side of the LEFT JOINs: one row with found
-- false when the page is empty). Keys that begin with @prefix (compared as
-- characters: no pattern), newest created first, below seq @before when
-- @paged; global_version is the stored row's version (NULL when there is
-- none) and the row itself is never listed.
SELECT coalesce(r.found, false)::boolean AS found,
       coalesce(r.key, '')::text AS key,
       coalesce(r.version, 0)::bigint AS version,
       coalesce(r.seq, 0)::bigint AS seq,
       g.version AS global_version
FROM rate_count(@rate_key::text, @now::timestamptz, @window_seconds::integer, @rate_limit::integer) AS hit
LEFT JOIN vss_users AS u ON u.tenant_id = @tenant_id AND u.user_token = @user_token
LEFT JOIN vss_objects AS g ON g.user_id = u.id AND g.store_id = @store_id AND g.key = 'global_version'
LEFT JOIN LATERAL (
    SELECT true AS found, o.key, o.version, o.seq
    FROM vss_objects AS o
    WHERE o.user_id = u.id AND o.store_id = @store_id
      AND (NOT @paged::boolean OR o.seq < @before::bigint)
      AND starts_with(o.key, @prefix::text)
      AND o.key <> 'global_version'
    ORDER BY o.seq DESC
    LIMIT @max_rows::integer
) AS r ON true
ORDER BY r.seq DESC;

-- name: VSSRefusalRecord :exec
-- @day is the UTC date of @now.
INSERT INTO vss_refusals (tenant_id, user_token, day, kind, count, last_at)
VALUES (@tenant_id, @user_token, @day::date, @kind, 1, @now)
ON CONFLICT (tenant_id, user_token, day, kind) DO UPDATE
SET count = vss_refusals.count + 1, last_at = excluded.last_at;

-- name: VSSRefusalsSince :many
SELECT kind, sum(count)::bigint AS count, max(last_at)::timestamptz AS last_at
FROM vss_refusals
WHERE tenant_id = @tenant_id AND user_token = @user_token AND day >= @since::date
GROUP BY kind
ORDER BY kind;

-- name: VSSUserGet :one
SELECT id, bytes, objects, first_seen, last_write
FROM vss_users
WHERE tenant_id = @tenant_id AND user_token = @user_token;

-- name: VSSUserLock :one
-- Takes the user's row lock, which every write of the user takes first
-- (vss_put), so what follows in the transaction sees all of its writes.
SELECT id FROM vss_users
WHERE tenant_id = @tenant_id AND user_token = @user_token
FOR UPDATE;

-- name: VSSUserStores :many
SELECT store_id, count(*)::bigint AS keys, coalesce(sum(size), 0)::bigint AS bytes, max(updated_at)::timestamptz AS last_write
FROM vss_objects
WHERE user_id = @user_id
GROUP BY store_id
ORDER BY store_id;

-- name: VSSUserKeys :many
-- A user's keys, by store and newest created first; the global version's
-- row too, which an operator may want to see.
SELECT store_id, key, version, size, created_at, updated_at
FROM vss_objects
WHERE user_id = @user_id AND (NOT @one_store::boolean OR store_id = @store_id)
ORDER BY store_id, seq DESC
LIMIT @max_rows;

-- name: VSSUserDeleteObjects :one
-- Deletes a user's keys (of one store with @one_store) and lowers its usage
-- by exactly what the DELETE removed, in one statement; the caller holds
-- the user's lock (VSSUserLock).
WITH gone AS (
    DELETE FROM vss_objects AS o
    WHERE o.user_id = @user_id AND (NOT @one_store::boolean OR o.store_id = @store_id)
    RETURNING o.size
), totals AS (
    SELECT count(*)::bigint AS objects, coalesce(sum(size), 0)::bigint AS bytes FROM gone
), lowered AS (
    UPDATE vss_users AS u
    SET bytes = u.bytes - t.bytes, objects = u.objects - t.objects::integer
    FROM totals AS t
    WHERE u.id = @user_id
    RETURNING u.id
)
SELECT t.objects, t.bytes FROM totals AS t;

-- name: VSSAuditInsert :exec
INSERT INTO vss_audit_log (tenant_id, user_token, action, detail, created_at)
VALUES (@tenant_id, @user_token, @action, @detail, @now);

-- name: VSSQuotaGet :one
SELECT quota_bytes, quota_objects, updated_at
FROM vss_user_quotas
WHERE tenant_id = @tenant_id AND user_token = @user_token;

-- name: VSSQuotaSet :exec
INSERT INTO vss_user_quotas (tenant_id, user_token, quota_bytes, quota_objects, updated_at)
VALUES (@tenant_id, @user_token, sqlc.narg(quota_bytes), sqlc.narg(quota_objects), @now)
ON CONFLICT (tenant_id, user_token) DO UPDATE
SET quota_bytes = excluded.quota_bytes, quota_objects = excluded.quota_objects, updated_at = excluded.updated_at;

-- name: VSSQuotaClear :exec
DELETE FROM vss_user_quotas WHERE tenant_id = @tenant_id AND user_token = @user_token;

-- name: VSSAuthMarkAdvance :one
-- vssauth.ReplayGuard.Advance in one round trip: db/functions/vss_auth_advance.sql.
SELECT vss_auth_advance(@tenant_id::bigint, @user_token::text, @ceiling::timestamptz, @mark::timestamptz)::boolean AS admitted;

-- name: VSSAuthMarksSweep :execrows
-- Forgets marks older than @before (now less the signature window), at most
-- @max_rows at a time: a mark that old can refuse no header the window
-- admits, so its row is only weight.
DELETE FROM vss_auth_marks AS m
WHERE m.ctid IN (
    SELECT ctid FROM vss_auth_marks WHERE mark < @before::timestamptz LIMIT @max_rows
);

-- name: VSSUsageDrift :many
-- Users whose recorded usage differs from what they store, with both, read
-- in one snapshot as NodeUsageDrift reads nodes'. @tenant_id = 0: every
-- tenant; an empty @user_token: every user.
WITH stored AS (
    SELECT o.user_id, count(*) AS objects, sum(o.size) AS bytes
    FROM vss_objects AS o
    GROUP BY 1
)
SELECT u.tenant_id, u.user_token,
       u.bytes AS recorded_bytes, u.objects::bigint AS recorded_objects,
       coalesce(s.bytes, 0)::bigint AS stored_bytes, coalesce(s.objects, 0)::bigint AS stored_objects
FROM vss_users AS u
LEFT JOIN stored AS s ON s.user_id = u.id
WHERE (@tenant_id::bigint = 0 OR u.tenant_id = @tenant_id::bigint)
  AND (@user_token::text = '' OR u.user_token = @user_token::text)
  AND (u.bytes, u.objects::bigint) IS DISTINCT FROM (coalesce(s.bytes, 0), coalesce(s.objects, 0))
ORDER BY u.tenant_id, u.user_token;

-- name: VSSUsageAdjust :exec
-- Repairs a drift by adding the difference, as NodeUsageAdjust does.
UPDATE vss_users
SET bytes = bytes + @bytes::bigint, objects = objects + @objects::integer
WHERE tenant_id = @tenant_id AND user_token = @user_token;
