-- name: AuditInsert :exec
INSERT INTO audit_log (tenant_id, node_key, action, network, detail, created_at)
VALUES (@tenant_id, @node_key, @action, @network, @detail, @now);

