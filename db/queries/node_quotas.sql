-- name: NodeQuotaGet :one
SELECT quota_bytes, quota_objects, quota_uploads, updated_at
FROM node_quotas
WHERE tenant_id = @tenant_id AND node_key = @node_key;

-- name: NodeQuotaSet :exec
INSERT INTO node_quotas (tenant_id, node_key, quota_bytes, quota_objects, quota_uploads, updated_at)
VALUES (@tenant_id, @node_key, sqlc.narg(quota_bytes), sqlc.narg(quota_objects), sqlc.narg(quota_uploads), @now)
ON CONFLICT (tenant_id, node_key) DO UPDATE
SET quota_bytes = excluded.quota_bytes, quota_objects = excluded.quota_objects,
    quota_uploads = excluded.quota_uploads, updated_at = excluded.updated_at;

-- name: NodeQuotaClear :exec
DELETE FROM node_quotas WHERE tenant_id = @tenant_id AND node_key = @node_key;
