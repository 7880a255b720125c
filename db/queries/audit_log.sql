-- name: AuditInsert :exec
INSERT INTO audit_log (tenant_id, node_key, action, network, detail, created_at)
VALUES (@tenant_id, @node_key, @action, @network, @detail, @now);

-- name: AuditListForNode :many
SELECT action, network, detail, created_at
FROM audit_log
WHERE tenant_id = @tenant_id AND node_key = @node_key
ORDER BY created_at DESC, id DESC
LIMIT @max_rows;
