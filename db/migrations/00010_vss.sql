-- +goose Up

-- LDK's Versioned Storage Service (VSS) beside the v1 protocol, on the same
-- store design: a usage row per user, locked and counted by every write in
-- the write's own transaction (db/functions/vss_put.sql), so concurrent
-- writes never take a user past its quota and usage always equals what is
-- stored; the operator's per-user quotas win over the tenant's, which win
-- over the server's.

-- How each tenant's VSS requests prove their user (internal/vssauth):
-- 'signature' (ldk-node's default, and ours), 'jwt' (RS256 bearer tokens
-- checked against the operator's PEM public key of the tenant's issuer), or
-- 'none' (development only: served only where VSS_ALLOW_NO_AUTH is set).
ALTER TABLE tenants
    ADD COLUMN vss_auth text NOT NULL DEFAULT 'signature' CHECK (vss_auth IN ('signature', 'jwt', 'none')),
    ADD COLUMN vss_jwt_public_key text,
    ADD CONSTRAINT tenants_vss_jwt_key CHECK ((vss_auth = 'jwt') = (vss_jwt_public_key IS NOT NULL));

-- The newest signature time each key has used (vssauth.ReplayGuard), so a
-- captured signature header stops working once its owner has signed a
-- newer one: one row per key and tenant, raised by one statement.
CREATE TABLE vss_auth_marks (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    user_token  text NOT NULL,
    mark        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_token)
) WITH (fillfactor = 80);

-- A VSS user is a tenant's user token: the signature authorizer's public
-- key (hex, as sent) or a JWT's subject. Its row is created by its first
-- write and kept (like node_usage) so its id stays stable; bytes are the
-- sum of its values' sizes, objects its keys (the global_version rows
-- included: they are rows like any other).
CREATE TABLE vss_users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    user_token  text NOT NULL CHECK (length(user_token) BETWEEN 1 AND 120),
    bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    objects     integer NOT NULL DEFAULT 0 CHECK (objects >= 0),
    first_seen  timestamptz NOT NULL,
    last_write  timestamptz,
    UNIQUE (tenant_id, user_token)
);

-- An operator's per-user quotas; NULL: the tenant's, else the server's.
CREATE TABLE vss_user_quotas (
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    user_token    text NOT NULL,
    quota_bytes   bigint CHECK (quota_bytes > 0),
    quota_objects integer CHECK (quota_objects > 0),
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_token)
);

-- One row per key of a user's store, as the reference keeps them. version
-- is the protocol's; revision counts every write of the row, so a read in
-- chunks can tell that the value changed under it (a blind write keeps
-- version 1). seq numbers rows in the order they were created: lists run
-- newest first and page by it. Limits as the reference's columns: store_id
-- up to 120 characters (may be empty), key up to 600.
CREATE TABLE vss_objects (
    user_id     bigint NOT NULL REFERENCES vss_users (id),
    store_id    text NOT NULL CHECK (length(store_id) <= 120),
    key         text NOT NULL CHECK (length(key) <= 600),
    value       bytea NOT NULL,
    size        bigint NOT NULL,
    version     bigint NOT NULL,
    revision    bigint NOT NULL DEFAULT 1,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, store_id, key)
);
-- Uncompressed out of line, as v1's payloads: a read of a large value in
-- chunks (substring) reads only the TOAST chunks it needs, and clients
-- encrypt their values, so compression would only cost CPU.
ALTER TABLE vss_objects ALTER COLUMN value SET STORAGE EXTERNAL;
CREATE INDEX vss_objects_list ON vss_objects (user_id, store_id, seq DESC) INCLUDE (key, version);

-- Refusals of a user's own requests (quota, rate, new users of its
-- address), one row per user, day and kind, as node_refusals for v1 nodes.
CREATE TABLE vss_refusals (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    user_token  text NOT NULL,
    day         date NOT NULL,
    kind        text NOT NULL,
    count       bigint NOT NULL,
    last_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_token, day, kind)
);

-- What operators did to a user's data (server vss delete), as audit_log
-- records it for v1 nodes.
CREATE TABLE vss_audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    user_token  text NOT NULL,
    action      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);
CREATE INDEX vss_audit_log_user ON vss_audit_log (tenant_id, user_token, created_at);

-- One row per VSS user that ever wrote: its usage against its quotas (its
-- own, else the tenant's, else the server's, as vss_put applies them).
CREATE VIEW reporting.vss_users AS
SELECT x.tenant, x.user_token,
       coalesce((SELECT count(DISTINCT o.store_id) FROM vss_objects AS o WHERE o.user_id = x.id), 0) AS stores,
       x.objects, x.bytes, x.first_seen, x.last_write, x.quota_bytes, x.quota_objects,
       round(100.0 * x.bytes / nullif(x.quota_bytes, 0), 1) AS quota_bytes_pct,
       round(100.0 * x.objects / nullif(x.quota_objects, 0), 1) AS quota_objects_pct
FROM (
    SELECT u.id, t.slug AS tenant, u.user_token, u.objects::bigint AS objects, u.bytes, u.first_seen, u.last_write,
           coalesce(q.quota_bytes, t.quota_bytes, (SELECT value FROM server_settings WHERE key = 'quota_bytes')) AS quota_bytes,
           coalesce(q.quota_objects::bigint, t.quota_objects, (SELECT value FROM server_settings WHERE key = 'quota_objects')) AS quota_objects
    FROM vss_users AS u
    JOIN tenants AS t ON t.id = u.tenant_id
    LEFT JOIN vss_user_quotas AS q ON q.tenant_id = u.tenant_id AND q.user_token = u.user_token
) AS x;

-- One row per UTC day and tenant with VSS activity: operations answered
-- (activity_daily's vss_* kinds) and users that wrote for the first time.
-- Refusals and failed authorizations are counted with v1's in
-- reporting.daily.
CREATE VIEW reporting.vss_daily AS
WITH new_users AS (
    SELECT (first_seen AT TIME ZONE 'UTC')::date AS day, tenant_id, count(*) AS new_users
    FROM vss_users
    GROUP BY 1, 2
), activity AS (
    SELECT day, tenant_id,
           sum(count) FILTER (WHERE kind = 'vss_put') AS puts,
           sum(bytes) FILTER (WHERE kind = 'vss_put') AS bytes_in,
           sum(count) FILTER (WHERE kind = 'vss_get') AS gets,
           sum(bytes) FILTER (WHERE kind = 'vss_get') AS bytes_out,
           sum(count) FILTER (WHERE kind = 'vss_delete') AS deletes,
           sum(count) FILTER (WHERE kind = 'vss_list') AS lists
    FROM activity_daily
    WHERE kind IN ('vss_put', 'vss_get', 'vss_delete', 'vss_list')
    GROUP BY 1, 2
), days AS (
    SELECT day, tenant_id FROM new_users
    UNION SELECT day, tenant_id FROM activity
)
SELECT d.day, t.slug AS tenant,
       coalesce(a.puts, 0) AS puts,
       coalesce(a.bytes_in, 0) AS bytes_in,
       coalesce(a.gets, 0) AS gets,
       coalesce(a.bytes_out, 0) AS bytes_out,
       coalesce(a.deletes, 0) AS deletes,
       coalesce(a.lists, 0) AS lists,
       coalesce(n.new_users, 0) AS new_users
FROM days AS d
JOIN tenants AS t ON t.id = d.tenant_id
LEFT JOIN new_users AS n ON n.day = d.day AND n.tenant_id = d.tenant_id
LEFT JOIN activity AS a ON a.day = d.day AND a.tenant_id = d.tenant_id;

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'reporting') THEN
        GRANT SELECT ON reporting.vss_users, reporting.vss_daily TO reporting;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP VIEW reporting.vss_daily;
DROP VIEW reporting.vss_users;
DROP TABLE vss_audit_log;
DROP TABLE vss_refusals;
DROP TABLE vss_auth_marks;
ALTER TABLE tenants DROP CONSTRAINT tenants_vss_jwt_key, DROP COLUMN vss_jwt_public_key, DROP COLUMN vss_auth;
DROP TABLE vss_objects;
DROP TABLE vss_user_quotas;
DROP TABLE vss_users;
