-- +goose Up

-- Activity that is not in the data itself (logins, reads, refusals), as
-- daily counters per tenant and kind. Each replica adds up its counts in
-- memory and flushes them with one upsert per (day, tenant, kind) every few
-- seconds: no row per request, no hot row under load.
CREATE TABLE activity_daily (
    day        date NOT NULL,
    tenant_id  bigint NOT NULL REFERENCES tenants (id),
    kind       text NOT NULL,
    count      bigint NOT NULL DEFAULT 0,
    bytes      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, tenant_id, kind)
);

ALTER TABLE node_usage ADD COLUMN last_restore timestamptz;

-- Server-wide settings that reports need (the quotas a NULL tenant column
-- falls back to); written by serve at start-up.
CREATE TABLE server_settings (
    key        text PRIMARY KEY,
    value      bigint NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE SCHEMA reporting;

-- Quotas in force per node: its own, else its tenant's, else the server's.
CREATE VIEW reporting.node_quotas AS
SELECT u.tenant_id, u.node_key,
       coalesce(q.quota_bytes, t.quota_bytes, (SELECT value FROM server_settings WHERE key = 'quota_bytes')) AS quota_bytes,
       coalesce(q.quota_objects::bigint, t.quota_objects, (SELECT value FROM server_settings WHERE key = 'quota_objects')) AS quota_objects
FROM node_usage AS u
JOIN tenants AS t ON t.id = u.tenant_id
LEFT JOIN node_quotas AS q ON q.tenant_id = u.tenant_id AND q.node_key = u.node_key;

-- One row per node that ever stored something.
CREATE VIEW reporting.nodes AS
SELECT t.slug AS tenant,
       encode(u.node_key, 'hex') AS node_key,
       coalesce(o.networks, '{}') AS networks,
       coalesce(o.objects, 0) AS objects,
       coalesce(o.channel_monitors, 0) AS channel_monitors,
       u.bytes AS live_bytes,
       coalesce(h.history_bytes, 0) AS history_bytes,
       u.first_seen,
       o.last_persist,
       u.last_restore,
       nq.quota_bytes,
       nq.quota_objects,
       round(100.0 * u.bytes / nullif(nq.quota_bytes, 0), 1) AS quota_bytes_pct,
       round(100.0 * u.objects / nullif(nq.quota_objects, 0), 1) AS quota_objects_pct
FROM node_usage AS u
JOIN tenants AS t ON t.id = u.tenant_id
JOIN reporting.node_quotas AS nq ON nq.tenant_id = u.tenant_id AND nq.node_key = u.node_key
LEFT JOIN LATERAL (
    SELECT array_agg(DISTINCT ob.network ORDER BY ob.network) AS networks,
           count(*) AS objects,
           count(*) FILTER (WHERE ob.label = 'channel_monitor') AS channel_monitors,
           max(ob.updated_at) AS last_persist
    FROM objects AS ob
    WHERE ob.tenant_id = u.tenant_id AND ob.node_key = u.node_key
) AS o ON true
LEFT JOIN LATERAL (
    SELECT sum(v.size) AS history_bytes
    FROM objects AS ob
    JOIN object_versions AS v ON v.object_id = ob.id AND v.version < ob.latest_version AND v.payload IS NOT NULL
    WHERE ob.tenant_id = u.tenant_id AND ob.node_key = u.node_key
) AS h ON true;

-- One row per UTC day and tenant with any activity. persists and bytes_in
-- count stored versions (a retry of the latest bytes stores none); versions
-- of deleted accounts are gone from them.
CREATE VIEW reporting.daily AS
WITH persists AS (
    SELECT (v.created_at AT TIME ZONE 'UTC')::date AS day, o.tenant_id, count(*) AS persists, sum(v.size) AS bytes_in
    FROM object_versions AS v
    JOIN objects AS o ON o.id = v.object_id
    GROUP BY 1, 2
), new_nodes AS (
    SELECT (first_seen AT TIME ZONE 'UTC')::date AS day, tenant_id, count(*) AS new_nodes
    FROM node_usage
    GROUP BY 1, 2
), activity AS (
    SELECT day, tenant_id,
           sum(count) FILTER (WHERE kind = 'login') AS restores,
           sum(count) FILTER (WHERE kind = 'retrieve') AS retrieves,
           sum(bytes) FILTER (WHERE kind = 'retrieve') AS bytes_out,
           sum(count) FILTER (WHERE kind = 'signature_failure') AS signature_failures,
           sum(count) FILTER (WHERE kind = 'refused_rate_address') AS refused_rate_address,
           sum(count) FILTER (WHERE kind = 'refused_rate_node') AS refused_rate_node,
           sum(count) FILTER (WHERE kind = 'refused_new_nodes') AS refused_new_nodes,
           sum(count) FILTER (WHERE kind = 'refused_quota') AS refused_quota,
           sum(count) FILTER (WHERE kind = 'refused_body_size') AS refused_body_size,
           sum(count) FILTER (WHERE kind = 'refused_replay') AS refused_replay
    FROM activity_daily
    GROUP BY 1, 2
), days AS (
    SELECT day, tenant_id FROM persists
    UNION SELECT day, tenant_id FROM new_nodes
    UNION SELECT day, tenant_id FROM activity
)
SELECT d.day, t.slug AS tenant,
       coalesce(p.persists, 0) AS persists,
       coalesce(p.bytes_in, 0) AS bytes_in,
       coalesce(a.restores, 0) AS restores,
       coalesce(a.retrieves, 0) AS retrieves,
       coalesce(a.bytes_out, 0) AS bytes_out,
       coalesce(n.new_nodes, 0) AS new_nodes,
       coalesce(a.signature_failures, 0) AS signature_failures,
       coalesce(a.refused_rate_address, 0) AS refused_rate_address,
       coalesce(a.refused_rate_node, 0) AS refused_rate_node,
       coalesce(a.refused_new_nodes, 0) AS refused_new_nodes,
       coalesce(a.refused_quota, 0) AS refused_quota,
       coalesce(a.refused_body_size, 0) AS refused_body_size,
       coalesce(a.refused_replay, 0) AS refused_replay
FROM days AS d
JOIN tenants AS t ON t.id = d.tenant_id
LEFT JOIN persists AS p ON p.day = d.day AND p.tenant_id = d.tenant_id
LEFT JOIN new_nodes AS n ON n.day = d.day AND n.tenant_id = d.tenant_id
LEFT JOIN activity AS a ON a.day = d.day AND a.tenant_id = d.tenant_id;

-- Totals per tenant.
CREATE VIEW reporting.tenants AS
SELECT t.slug AS tenant, t.name, t.created_at, t.disabled_at,
       count(n.node_key) AS nodes,
       coalesce(sum(n.objects), 0) AS objects,
       coalesce(sum(n.live_bytes), 0) AS live_bytes,
       coalesce(sum(n.history_bytes), 0) AS history_bytes,
       count(n.node_key) FILTER (WHERE n.last_persist > now() - interval '7 days') AS nodes_persisted_7d
FROM tenants AS t
LEFT JOIN reporting.nodes AS n ON n.tenant = t.slug
GROUP BY t.id, t.slug, t.name, t.created_at, t.disabled_at;

-- Nodes with channel monitors, by how long ago they last persisted: a node
-- that has channels but stopped backing up is at risk.
CREATE VIEW reporting.stale_nodes AS
SELECT tenant, node_key, networks, channel_monitors, last_persist, last_restore,
       extract(epoch FROM now() - last_persist)::bigint / 86400 AS days_since_last_persist
FROM reporting.nodes
WHERE channel_monitors > 0;

-- A read-only role for analysts: the reporting views and nothing else (the
-- views read the tables with their owner's rights). Roles are cluster-wide,
-- and creating one needs CREATEROLE; without it, an administrator creates
-- the role and re-runs the grants in docs/reporting.md.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reporting') THEN
        IF (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            CREATE ROLE reporting NOLOGIN;
        ELSE
            RAISE NOTICE 'role reporting not created: % lacks CREATEROLE (see docs/reporting.md)', current_user;
            RETURN;
        END IF;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO reporting', current_database());
    GRANT USAGE ON SCHEMA reporting TO reporting;
    GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO reporting;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'reporting') THEN
        REVOKE ALL ON ALL TABLES IN SCHEMA reporting FROM reporting;
        REVOKE ALL ON SCHEMA reporting FROM reporting;
        EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM reporting', current_database());
    END IF;
END
$$;
-- +goose StatementEnd
DROP SCHEMA reporting CASCADE;
DROP TABLE server_settings;
ALTER TABLE node_usage DROP COLUMN last_restore;
DROP TABLE activity_daily;
