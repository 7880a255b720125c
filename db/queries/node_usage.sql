-- name: NodeUsageGet :one
SELECT bytes, objects, uploads, first_seen
FROM node_usage
WHERE tenant_id = @tenant_id AND node_key = @node_key;

-- name: NodeUsageDrift :many
-- Nodes whose recorded usage differs from what is stored, with both. One
-- statement reads one snapshot, and every write changes the data and the
-- usage in one transaction, so a difference here is real, never a write in
-- flight. @tenant_id = 0: every tenant; an empty @node_key: every node. The
-- upload count of one node reads the whole upload table (it has no index by
-- node, to keep each upload small).
WITH stored AS (
    SELECT o.tenant_id, o.node_key, count(*) AS objects, sum(o.size) AS bytes
    FROM objects AS o
    WHERE (@tenant_id::bigint = 0 OR o.tenant_id = @tenant_id::bigint)
      AND (length(@node_key::bytea) = 0 OR o.node_key = @node_key::bytea)
    GROUP BY 1, 2
), uploads AS (
    SELECT h.node_id, count(*) AS n
    FROM upload_hashes AS h
    GROUP BY 1
)
SELECT u.tenant_id, u.node_key,
       u.bytes AS recorded_bytes, u.objects::bigint AS recorded_objects, u.uploads AS recorded_uploads,
       coalesce(s.bytes, 0)::bigint AS stored_bytes, coalesce(s.objects, 0)::bigint AS stored_objects, coalesce(h.n, 0)::bigint AS stored_uploads
FROM node_usage AS u
LEFT JOIN stored AS s ON s.tenant_id = u.tenant_id AND s.node_key = u.node_key
LEFT JOIN uploads AS h ON h.node_id = u.id
WHERE (@tenant_id::bigint = 0 OR u.tenant_id = @tenant_id::bigint)
  AND (length(@node_key::bytea) = 0 OR u.node_key = @node_key::bytea)
  AND (u.bytes, u.objects::bigint, u.uploads) IS DISTINCT FROM (coalesce(s.bytes, 0), coalesce(s.objects, 0), coalesce(h.n, 0))
ORDER BY u.tenant_id, u.node_key;

-- name: NodeUsageAdjust :exec
-- Repairs a drift found by NodeUsageDrift by adding the difference, not by
-- setting the stored figures: writes that commit after the drift was read
-- have added their own changes, which setting would erase.
UPDATE node_usage
SET bytes = bytes + @bytes::bigint, objects = objects + @objects::integer, uploads = uploads + @uploads::bigint
WHERE tenant_id = @tenant_id AND node_key = @node_key;
