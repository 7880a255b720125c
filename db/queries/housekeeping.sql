-- name: HousekeepingLock :one
-- One replica at a time: a transaction-scoped advisory lock, released at
-- commit, so a replica that dies mid-run holds nothing.
SELECT pg_try_advisory_xact_lock(7385110412001)::boolean AS locked;

-- name: VersionsPruneRetention :execrows
-- Drops the bytes of versions beyond @retain per object, at most @max_rows
-- at a time. persist_object prunes each object it writes; this catches
-- objects that stopped being written after RETAIN_VERSIONS was lowered, and
-- versions a streaming retrieve had pinned. A pinned version is skipped.
UPDATE object_versions AS v
SET payload = NULL
FROM (
    SELECT hv.object_id, hv.version
    FROM object_versions AS hv
    JOIN objects AS o ON o.id = hv.object_id
    WHERE hv.payload IS NOT NULL AND hv.version <= o.latest_version - @retain::bigint
      AND (hv.pinned_until IS NULL OR hv.pinned_until <= @now::timestamptz)
    LIMIT @max_rows
) AS doomed
WHERE v.object_id = doomed.object_id AND v.version = doomed.version;
