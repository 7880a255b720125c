-- name: ObjectUpsert :one
-- Stores the latest bytes of one object; a persist of an existing key replaces
-- them in place.
INSERT INTO objects (tenant_id, node_key, network, label, channel_id, payload, size, sha256, created_at, updated_at)
VALUES (@tenant_id, @node_key, @network, @label, @channel_id, @payload, @size, @sha256, @now, @now)
ON CONFLICT (tenant_id, node_key, network, label, channel_id) DO UPDATE
SET payload = excluded.payload,
    size = excluded.size,
    sha256 = excluded.sha256,
    updated_at = excluded.updated_at
RETURNING id;

-- name: ObjectGetPayload :one
SELECT payload
FROM objects
WHERE tenant_id = @tenant_id
  AND node_key = @node_key
  AND network = @network
  AND label = @label
  AND channel_id = @channel_id;

-- name: ObjectListKeys :many
-- Reads only this node's index range, whatever the size of the table.
SELECT label, channel_id
FROM objects
WHERE tenant_id = @tenant_id
  AND node_key = @node_key
  AND network = @network
ORDER BY label, channel_id;
