-- name: HousekeepingLock :one
-- One replica at a time: a transaction-scoped advisory lock, released at
-- commit, so a replica that dies mid-run holds nothing.
SELECT pg_try_advisory_xact_lock(7385110412001)::boolean AS locked;

-- name: VersionsPruneRetention :execrows
-- Deletes versions beyond @retain per object, at most @max_rows at a time.
-- persist_object prunes each object it writes; this catches versions a
-- streaming retrieve had pinned, and objects that stopped being written
-- after RETAIN_VERSIONS was lowered. A version still pinned is skipped.
DELETE FROM object_versions AS v
USING (
    SELECT hv.object_id, hv.version
    FROM object_versions AS hv
    JOIN objects AS o ON o.id = hv.object_id
    WHERE hv.version <= o.latest_version - @retain::bigint
      AND (hv.pinned_until IS NULL OR hv.pinned_until <= @now::timestamptz)
    LIMIT @max_rows
) AS doomed
WHERE v.object_id = doomed.object_id AND v.version = doomed.version;

-- name: UploadsForget :execrows
-- Forgets uploads from before @before_day (UTC days since 1970), at most
-- @max_rows at a time, and takes them off their nodes' counts in the same
-- statement. The BRIN index on day finds them without reading the rest.
WITH gone AS (
    DELETE FROM upload_hashes AS h
    WHERE h.ctid IN (
        SELECT ctid FROM upload_hashes WHERE day < @before_day::integer LIMIT @max_rows
    )
    RETURNING h.node_id
), counted AS (
    SELECT node_id, count(*) AS n FROM gone GROUP BY node_id
)
UPDATE node_usage AS u
SET uploads = u.uploads - c.n
FROM counted AS c
WHERE u.id = c.node_id;

-- name: UsageCheckLock :exec
-- One usage check at a time across replicas and the CLI: a repair adds the
-- differences a check read, so two at once would add them twice.
SELECT pg_advisory_xact_lock(7385110412002);
