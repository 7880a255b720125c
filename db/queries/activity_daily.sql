-- name: ActivityAdd :exec
-- Adds a replica's counts of one kind of activity to its day's row.
INSERT INTO activity_daily (day, tenant_id, kind, count, bytes)
VALUES (@day::date, @tenant_id, @kind, @count, @bytes)
ON CONFLICT (day, tenant_id, kind) DO UPDATE
SET count = activity_daily.count + excluded.count,
    bytes = activity_daily.bytes + excluded.bytes;
