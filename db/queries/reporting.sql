-- The reporting views (db/migrations/00009_bounded_growth.sql) as `server
-- report` prints them: every column in the view's order, which is the order
-- of the table, CSV and JSON output. A cast gives a column the type
-- PostgreSQL gives it where sqlc cannot infer it (sums of bigint are
-- numeric, aggregates over a lateral join are unknown to it); the nullable
-- ones a cast would make NOT NULL to sqlc are typed in sqlc.yaml instead.

-- name: ReportNodes :many
-- Nodes that persisted since @since (NULL: all).
SELECT tenant, node_key, networks::text[], objects, channel_monitors,
       live_bytes, history_bytes::numeric, uploads, upload_history_bytes::bigint,
       first_seen, last_persist, last_restore,
       quota_bytes, quota_objects, quota_uploads,
       quota_bytes_pct, quota_objects_pct, quota_uploads_pct
FROM reporting.nodes
WHERE (@tenant::text = '' OR tenant = @tenant::text)
  AND (sqlc.narg('since')::timestamptz IS NULL OR last_persist >= sqlc.narg('since')::timestamptz)
ORDER BY tenant, live_bytes DESC, node_key;

-- name: ReportDaily :many
-- UTC days from @since's on.
SELECT day, tenant, persists::numeric, bytes_in::numeric, restores::numeric,
       retrieves::numeric, bytes_out::numeric, new_nodes,
       signature_failures::numeric, refused_rate_address::numeric, refused_rate_node::numeric,
       refused_new_nodes::numeric, refused_quota::numeric, refused_body_size::numeric,
       refused_replay::numeric, paced::numeric
FROM reporting.daily
WHERE (@tenant::text = '' OR tenant = @tenant::text)
  AND day >= (sqlc.arg('since')::timestamptz AT TIME ZONE 'UTC')::date
ORDER BY day DESC, tenant;

-- name: ReportTenants :many
SELECT tenant, name, created_at, disabled_at, nodes,
       objects::numeric, live_bytes::numeric, history_bytes::numeric,
       uploads::numeric, upload_history_bytes::numeric, nodes_persisted_7d
FROM reporting.tenants
WHERE (@tenant::text = '' OR tenant = @tenant::text)
ORDER BY tenant;

-- name: ReportStaleNodes :many
-- Nodes with channel monitors and no persist since @since.
SELECT tenant, node_key, networks::text[], channel_monitors,
       last_persist, last_restore, days_since_last_persist
FROM reporting.stale_nodes
WHERE (@tenant::text = '' OR tenant = @tenant::text)
  AND (last_persist IS NULL OR last_persist < @since::timestamptz)
ORDER BY last_persist NULLS FIRST, tenant, node_key;

-- name: ReportVSSUsers :many
-- VSS users that wrote since @since (NULL: all).
SELECT tenant, user_token, stores::bigint, objects, bytes, first_seen, last_write,
       quota_bytes, quota_objects, quota_bytes_pct, quota_objects_pct
FROM reporting.vss_users
WHERE (@tenant::text = '' OR tenant = @tenant::text)
  AND (sqlc.narg('since')::timestamptz IS NULL OR last_write >= sqlc.narg('since')::timestamptz)
ORDER BY tenant, bytes DESC, user_token;

-- name: ReportVSSDaily :many
-- UTC days from @since's on.
SELECT day, tenant, puts::numeric, bytes_in::numeric, gets::numeric, bytes_out::numeric,
       deletes::numeric, lists::numeric, new_users
FROM reporting.vss_daily
WHERE (@tenant::text = '' OR tenant = @tenant::text)
  AND day >= (sqlc.arg('since')::timestamptz AT TIME ZONE 'UTC')::date
ORDER BY day DESC, tenant;
