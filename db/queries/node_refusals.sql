-- name: NodeRefusalRecord :exec
-- @day is the UTC date of @now.
INSERT INTO node_refusals (tenant_id, node_key, day, kind, count, last_at)
VALUES (@tenant_id, @node_key, @day::date, @kind, 1, @now)
ON CONFLICT (tenant_id, node_key, day, kind) DO UPDATE
SET count = node_refusals.count + 1, last_at = excluded.last_at;

-- name: NodeRefusalsSince :many
SELECT kind, sum(count)::bigint AS count, max(last_at)::timestamptz AS last_at
FROM node_refusals
WHERE tenant_id = @tenant_id AND node_key = @node_key AND day >= @since::date
GROUP BY kind
ORDER BY kind;
