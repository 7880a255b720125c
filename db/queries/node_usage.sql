-- name: NodeUsageGet :one
SELECT bytes, objects, first_seen
FROM node_usage
WHERE tenant_id = @tenant_id AND node_key = @node_key;

-- name: NodeUsageRelease :exec
-- Frees the quota of deleted objects.
UPDATE node_usage
SET bytes = bytes - @bytes, objects = objects - @objects
WHERE tenant_id = @tenant_id AND node_key = @node_key;
