-- +goose Up

-- Bounded growth: what a persist leaves behind once retention has dropped
-- its bytes is one upload_hashes row (about 90 bytes with its index), counted
-- against the node; version rows beyond retention are deleted, not kept
-- without their bytes. Rate limits refill continuously (GCRA), so a node's
-- persist over its allowance can wait for its turn instead of being refused.

-- Nodes get a compact id for the rows they keep per upload, and a count of
-- those rows (their upload history), checked against a quota.
ALTER TABLE node_usage
    ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN uploads bigint NOT NULL DEFAULT 0 CHECK (uploads >= 0),
    ADD CONSTRAINT node_usage_id UNIQUE (id);

ALTER TABLE node_quotas ADD COLUMN quota_uploads bigint CHECK (quota_uploads > 0);

-- Every body a node uploaded, by the first 128 bits of its SHA-256, for the
-- replay rule. 56 bytes of heap per row (no foreign key: node_usage rows are
-- never deleted) plus about 27 in the hash index; day (UTC days since 1970)
-- lets housekeeping forget uploads older than UPLOAD_HISTORY_DAYS through
-- the BRIN index, which costs almost nothing since rows arrive in day order.
-- A body the node never uploaded is refused only if the first 128 bits of
-- its hash equal one of the node's earlier uploads': about n/2^128 for a node
-- with n uploads.
CREATE TABLE upload_hashes (
    node_id bigint NOT NULL,
    digest  uuid NOT NULL,
    day     integer NOT NULL
);
CREATE INDEX upload_hashes_digest ON upload_hashes USING hash (digest);
CREATE INDEX upload_hashes_day ON upload_hashes USING brin (day);

INSERT INTO node_usage (tenant_id, node_key, first_seen)
SELECT tenant_id, node_key, min(created_at) FROM node_upload_hashes GROUP BY 1, 2
ON CONFLICT DO NOTHING;

INSERT INTO upload_hashes (node_id, digest, day)
SELECT u.id, encode(substring(h.sha256 FROM 1 FOR 16), 'hex')::uuid,
       (h.created_at AT TIME ZONE 'UTC')::date - date '1970-01-01'
FROM node_upload_hashes AS h
JOIN node_usage AS u ON u.tenant_id = h.tenant_id AND u.node_key = h.node_key
ORDER BY 3;

UPDATE node_usage AS u SET uploads = c.n
FROM (SELECT node_id, count(*) AS n FROM upload_hashes GROUP BY 1) AS c
WHERE u.id = c.node_id;

DROP TABLE node_upload_hashes;

-- Reports counted persists from the version rows, which now go with
-- retention: they count them as activity from here on, and the history so
-- far moves there.
INSERT INTO activity_daily (day, tenant_id, kind, count, bytes)
SELECT (v.created_at AT TIME ZONE 'UTC')::date, o.tenant_id, 'persist', count(*), sum(v.size)
FROM object_versions AS v
JOIN objects AS o ON o.id = v.object_id
GROUP BY 1, 2
ON CONFLICT (day, tenant_id, kind) DO UPDATE
SET count = activity_daily.count + excluded.count, bytes = activity_daily.bytes + excluded.bytes;

-- Versions beyond retention go; every version row left holds its bytes.
DELETE FROM object_versions WHERE payload IS NULL;
DROP INDEX object_versions_held;
ALTER TABLE object_versions ALTER COLUMN payload SET NOT NULL;

-- GCRA: each key keeps the theoretical arrival time (tat) of its next
-- request. A limit of n per window lets a request through when tat, moved
-- on by window/n, is at most one window ahead of now: a burst of n from
-- rest, then one every window/n. A key whose tat has passed is at rest, so
-- housekeeping deletes it. No index on tat keeps the update HOT; the sweep
-- reads the table, which holds only the subjects of the last hour.
DROP FUNCTION rate_count(text, timestamptz, integer, integer);
DROP FUNCTION persist_object(bigint, bytea, text, text, bytea, bytea, bytea, timestamptz, integer, boolean,
    text, integer, text, integer, bigint, integer);
DROP FUNCTION rate_hit(text, timestamptz, integer, integer);
DROP TABLE rate_limits;
CREATE TABLE rate_limits (
    key  text PRIMARY KEY,
    tat  timestamptz NOT NULL
) WITH (fillfactor = 80);

-- +goose StatementBegin
-- rate_take counts one request against p_key's allowance of p_limit per
-- p_window_seconds. When the allowance is used up, the request may wait up to
-- p_max_wait_ms for its turn: the turn is taken now (so replicas agree on the
-- order) and wait_ms says how long to wait. Past p_max_wait_ms it raises
-- SQLSTATE LBL01 (MESSAGE 'rate limit: ' || key, DETAIL the seconds until a
-- request would pass), and, raised inside a statement, undoes it: a refused
-- request is not counted. used is how much of the allowance is taken after
-- this request (p_limit: none is left). p_limit <= 0: no limit.
CREATE FUNCTION rate_take(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer, p_max_wait_ms bigint,
                          OUT wait_ms bigint, OUT used integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_step interval;
    v_tat timestamptz;
BEGIN
    wait_ms := 0;
    used := 0;
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    -- timestamptz counts microseconds: a limit above one a microsecond is
    -- one a microsecond.
    v_step := greatest(make_interval(secs => p_window_seconds::double precision / p_limit), interval '1 microsecond');
    INSERT INTO rate_limits AS r (key, tat)
    VALUES (p_key, p_now + v_step)
    ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, p_now) + v_step
    RETURNING r.tat INTO v_tat;
    wait_ms := greatest(ceil(extract(epoch FROM v_tat - make_interval(secs => p_window_seconds) - p_now) * 1000), 0)::bigint;
    IF wait_ms > greatest(p_max_wait_ms, 0) THEN
        RAISE EXCEPTION USING ERRCODE = 'LBL01', MESSAGE = 'rate limit: ' || p_key,
            DETAIL = greatest(ceil(wait_ms / 1000.0), 1)::text;
    END IF;
    used := least(ceil(round((extract(epoch FROM v_tat - p_now) / extract(epoch FROM v_step))::numeric, 6)), p_limit)::integer;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- rate_peek says what rate_take would, without counting: how much of
-- p_key's allowance is taken (p_limit: none is left) and in how many
-- milliseconds one more request would pass (0: now).
CREATE FUNCTION rate_peek(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer,
                          OUT used integer, OUT retry_ms bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_ahead double precision;
BEGIN
    used := 0;
    retry_ms := 0;
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    SELECT extract(epoch FROM greatest(r.tat, p_now) - p_now) INTO v_ahead FROM rate_limits AS r WHERE r.key = p_key;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    used := least(ceil(round((v_ahead * p_limit / p_window_seconds)::numeric, 6)), p_limit)::integer;
    retry_ms := greatest(ceil((v_ahead + p_window_seconds::double precision / p_limit - p_window_seconds) * 1000), 0)::bigint;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- rate_hit counts one request that is refused, not paced, past the limit.
CREATE FUNCTION rate_hit(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer)
RETURNS integer
LANGUAGE sql AS $$
    SELECT t.used FROM rate_take(p_key, p_now, p_window_seconds, p_limit, 0) AS t
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- rate_count is rate_hit for a request that writes nothing durable of its
-- own (a login, a read): its transaction does not wait for the WAL flush,
-- since a count lost in a crash costs nothing. set_config(..., true) lasts
-- until the end of the calling transaction. A limit of 0 changes nothing, so
-- a read inside a durable transaction may pass 0.
CREATE FUNCTION rate_count(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    IF p_limit <= 0 THEN
        RETURN 0;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN rate_hit(p_key, p_now, p_window_seconds, p_limit);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- persist_object stores a new version of one object in one round trip, with
-- every rule of a write in the same transaction. Outcomes:
--   'stored'     a new version (returned) was written;
--   'unchanged'  the body equals the latest version: nothing written (a
--                retry of a persist that succeeded);
--   'paced'      the node's allowance (p_node_rate_limit a minute) is used up
--                and its turn comes in wait_ms (at most p_pace_max_ms): the
--                turn is taken and nothing else is written. The caller waits
--                and calls again with p_node_rate_limit 0.
-- Refusals raise, so nothing is written: LBL01 (rate: the node past
-- p_pace_max_ms, or new nodes of the address past p_new_node_limit an hour),
-- LBQ01/LBQ02/LBQ03 (bytes, objects, uploads quota; DETAIL is JSON), LBR01
-- (a replay: the node uploaded these bytes before under any object;
-- p_allow_replay lets an operator restore an old version). Quotas are the
-- node's own (node_quotas), else p_quota_*; limits and quotas <= 0 are off.
-- Retention deletes the versions older than the newest p_retain, except one
-- a streaming retrieve has pinned (housekeeping deletes it later).
CREATE FUNCTION persist_object(
    p_tenant bigint, p_node bytea, p_network text, p_label text, p_channel bytea,
    p_payload bytea, p_sha256 bytea, p_now timestamptz, p_retain integer, p_allow_replay boolean,
    p_node_rate_key text, p_node_rate_limit integer, p_pace_max_ms bigint,
    p_new_node_key text, p_new_node_limit integer,
    p_quota_bytes bigint, p_quota_objects integer, p_quota_uploads bigint)
RETURNS TABLE (outcome text, version bigint, wait_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_size bigint := length(p_payload);
    v_digest uuid := encode(substring(p_sha256 FROM 1 FOR 16), 'hex')::uuid;
    v_wait bigint;
    v_id bigint;
    v_latest bigint;
    v_sha bytea;
    v_old_size bigint := 0;
    v_new_object boolean := false;
    v_delta bigint;
    v_node_id bigint;
    v_bytes bigint;
    v_objects integer;
    v_uploads bigint;
    v_quota_bytes bigint;
    v_quota_objects integer;
    v_quota_uploads bigint;
BEGIN
    IF p_node_rate_limit > 0 THEN
        SELECT t.wait_ms INTO v_wait FROM rate_take(p_node_rate_key, p_now, 60, p_node_rate_limit, p_pace_max_ms) AS t;
        IF v_wait > 0 THEN
            RETURN QUERY SELECT 'paced'::text, 0::bigint, v_wait;
            RETURN;
        END IF;
    END IF;

    -- The object's row lock numbers its versions without gaps. A new object
    -- is inserted; an insert that loses a race to a concurrent first persist
    -- goes back to lock the winner's row.
    LOOP
        SELECT o.id, o.latest_version, o.sha256, o.size INTO v_id, v_latest, v_sha, v_old_size
        FROM objects AS o
        WHERE o.tenant_id = p_tenant AND o.node_key = p_node AND o.network = p_network
          AND o.label = p_label AND o.channel_id = p_channel
        FOR UPDATE;
        EXIT WHEN FOUND;
        INSERT INTO objects AS o (tenant_id, node_key, network, label, channel_id, latest_version, size, sha256, created_at, updated_at)
        VALUES (p_tenant, p_node, p_network, p_label, p_channel, 1, v_size, p_sha256, p_now, p_now)
        ON CONFLICT (tenant_id, node_key, network, label, channel_id) DO NOTHING
        RETURNING o.id INTO v_id;
        IF v_id IS NOT NULL THEN
            v_latest := 1;
            v_old_size := 0;
            v_new_object := true;
            EXIT;
        END IF;
    END LOOP;

    IF NOT v_new_object THEN
        IF v_sha = p_sha256 THEN
            RETURN QUERY SELECT 'unchanged'::text, v_latest, 0::bigint;
            RETURN;
        END IF;
        v_latest := v_latest + 1;
        UPDATE objects AS o
        SET latest_version = v_latest, size = v_size, sha256 = p_sha256, updated_at = p_now
        WHERE o.id = v_id;
    END IF;

    -- Usage, counted and locked by one UPDATE, which also reads the node's
    -- own quotas. The lock serialises the node's writes, so the replay check
    -- below sees every upload committed before it. The upload is counted as
    -- new; a replay raises, which undoes the count. A node's first persist
    -- creates its row and counts as a new node of its address.
    v_delta := v_size - v_old_size;
    LOOP
        UPDATE node_usage AS u
        SET bytes = u.bytes + v_delta, objects = u.objects + v_new_object::integer, uploads = u.uploads + 1
        FROM (SELECT 1) AS one
        LEFT JOIN node_quotas AS q ON q.tenant_id = p_tenant AND q.node_key = p_node
        WHERE u.tenant_id = p_tenant AND u.node_key = p_node
        RETURNING u.id, u.bytes, u.objects, u.uploads,
            coalesce(q.quota_bytes, p_quota_bytes), coalesce(q.quota_objects, p_quota_objects), coalesce(q.quota_uploads, p_quota_uploads)
        INTO v_node_id, v_bytes, v_objects, v_uploads, v_quota_bytes, v_quota_objects, v_quota_uploads;
        EXIT WHEN FOUND;
        INSERT INTO node_usage AS u (tenant_id, node_key, first_seen)
        VALUES (p_tenant, p_node, p_now)
        ON CONFLICT DO NOTHING;
        IF FOUND AND p_new_node_limit > 0 THEN
            PERFORM rate_hit(p_new_node_key, p_now, 3600, p_new_node_limit);
        END IF;
    END LOOP;

    PERFORM 1 FROM upload_hashes AS h WHERE h.digest = v_digest AND h.node_id = v_node_id;
    IF FOUND THEN
        IF NOT p_allow_replay THEN
            RAISE EXCEPTION 'body was uploaded before by this node' USING ERRCODE = 'LBR01';
        END IF;
        UPDATE node_usage AS u SET uploads = u.uploads - 1 WHERE u.id = v_node_id;
    ELSE
        INSERT INTO upload_hashes (node_id, digest, day)
        VALUES (v_node_id, v_digest, (p_now AT TIME ZONE 'UTC')::date - date '1970-01-01');
        IF v_quota_uploads > 0 AND v_uploads > v_quota_uploads THEN
            RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'LBQ03',
                DETAIL = json_build_object('quota', 'uploads', 'limit', v_quota_uploads, 'used', v_uploads - 1, 'requested', 1)::text;
        END IF;
    END IF;

    IF v_delta > 0 AND v_quota_bytes > 0 AND v_bytes > v_quota_bytes THEN
        RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'LBQ01',
            DETAIL = json_build_object('quota', 'bytes', 'limit', v_quota_bytes, 'used', v_bytes - v_delta, 'requested', v_delta)::text;
    END IF;
    IF v_new_object AND v_quota_objects > 0 AND v_objects > v_quota_objects THEN
        RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'LBQ02',
            DETAIL = json_build_object('quota', 'objects', 'limit', v_quota_objects, 'used', v_objects - 1, 'requested', 1)::text;
    END IF;

    INSERT INTO object_versions (object_id, version, payload, size, sha256, created_at)
    VALUES (v_id, v_latest, p_payload, v_size, p_sha256, p_now);

    IF v_latest > p_retain THEN
        DELETE FROM object_versions AS v
        WHERE v.object_id = v_id AND v.version <= v_latest - p_retain
          AND (v.pinned_until IS NULL OR v.pinned_until <= p_now);
    END IF;

    RETURN QUERY SELECT 'stored'::text, v_latest, 0::bigint;
END
$$;
-- +goose StatementEnd

-- Reports: uploads remembered and their quota per node; persists counted as
-- activity (their version rows go with retention).
DROP VIEW reporting.stale_nodes;
DROP VIEW reporting.tenants;
DROP VIEW reporting.daily;
DROP VIEW reporting.nodes;
DROP VIEW reporting.node_quotas;

CREATE VIEW reporting.node_quotas AS
SELECT u.tenant_id, u.node_key,
       coalesce(q.quota_bytes, t.quota_bytes, (SELECT value FROM server_settings WHERE key = 'quota_bytes')) AS quota_bytes,
       coalesce(q.quota_objects::bigint, t.quota_objects, (SELECT value FROM server_settings WHERE key = 'quota_objects')) AS quota_objects,
       coalesce(q.quota_uploads, (SELECT value FROM server_settings WHERE key = 'quota_uploads')) AS quota_uploads
FROM node_usage AS u
JOIN tenants AS t ON t.id = u.tenant_id
LEFT JOIN node_quotas AS q ON q.tenant_id = u.tenant_id AND q.node_key = u.node_key;

-- One row per node that ever stored something. history_bytes are the bytes
-- of the older versions retention still holds; uploads the bodies the node
-- uploaded that are remembered for the replay rule, upload_history_bytes
-- what they take (heap and index, about 88 bytes each).
CREATE VIEW reporting.nodes AS
SELECT t.slug AS tenant,
       encode(u.node_key, 'hex') AS node_key,
       coalesce(o.networks, '{}') AS networks,
       coalesce(o.objects, 0) AS objects,
       coalesce(o.channel_monitors, 0) AS channel_monitors,
       u.bytes AS live_bytes,
       coalesce(h.history_bytes, 0) AS history_bytes,
       u.uploads,
       u.uploads * 88 AS upload_history_bytes,
       u.first_seen,
       o.last_persist,
       u.last_restore,
       nq.quota_bytes,
       nq.quota_objects,
       nq.quota_uploads,
       round(100.0 * u.bytes / nullif(nq.quota_bytes, 0), 1) AS quota_bytes_pct,
       round(100.0 * u.objects / nullif(nq.quota_objects, 0), 1) AS quota_objects_pct,
       round(100.0 * u.uploads / nullif(nq.quota_uploads, 0), 1) AS quota_uploads_pct
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
    JOIN object_versions AS v ON v.object_id = ob.id AND v.version < ob.latest_version
    WHERE ob.tenant_id = u.tenant_id AND ob.node_key = u.node_key
) AS h ON true;

-- One row per UTC day and tenant with any activity. persists and bytes_in
-- count stored versions (a retry of the latest bytes stores none).
CREATE VIEW reporting.daily AS
WITH new_nodes AS (
    SELECT (first_seen AT TIME ZONE 'UTC')::date AS day, tenant_id, count(*) AS new_nodes
    FROM node_usage
    GROUP BY 1, 2
), activity AS (
    SELECT day, tenant_id,
           sum(count) FILTER (WHERE kind = 'persist') AS persists,
           sum(bytes) FILTER (WHERE kind = 'persist') AS bytes_in,
           sum(count) FILTER (WHERE kind = 'login') AS restores,
           sum(count) FILTER (WHERE kind = 'retrieve') AS retrieves,
           sum(bytes) FILTER (WHERE kind = 'retrieve') AS bytes_out,
           sum(count) FILTER (WHERE kind = 'signature_failure') AS signature_failures,
           sum(count) FILTER (WHERE kind = 'refused_rate_address') AS refused_rate_address,
           sum(count) FILTER (WHERE kind = 'refused_rate_node') AS refused_rate_node,
           sum(count) FILTER (WHERE kind = 'refused_new_nodes') AS refused_new_nodes,
           sum(count) FILTER (WHERE kind = 'refused_quota') AS refused_quota,
           sum(count) FILTER (WHERE kind = 'refused_body_size') AS refused_body_size,
           sum(count) FILTER (WHERE kind = 'refused_replay') AS refused_replay,
           sum(count) FILTER (WHERE kind = 'paced') AS paced
    FROM activity_daily
    GROUP BY 1, 2
), days AS (
    SELECT day, tenant_id FROM new_nodes
    UNION SELECT day, tenant_id FROM activity
)
SELECT d.day, t.slug AS tenant,
       coalesce(a.persists, 0) AS persists,
       coalesce(a.bytes_in, 0) AS bytes_in,
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
       coalesce(a.refused_replay, 0) AS refused_replay,
       coalesce(a.paced, 0) AS paced
FROM days AS d
JOIN tenants AS t ON t.id = d.tenant_id
LEFT JOIN new_nodes AS n ON n.day = d.day AND n.tenant_id = d.tenant_id
LEFT JOIN activity AS a ON a.day = d.day AND a.tenant_id = d.tenant_id;

-- Totals per tenant.
CREATE VIEW reporting.tenants AS
SELECT t.slug AS tenant, t.name, t.created_at, t.disabled_at,
       count(n.node_key) AS nodes,
       coalesce(sum(n.objects), 0) AS objects,
       coalesce(sum(n.live_bytes), 0) AS live_bytes,
       coalesce(sum(n.history_bytes), 0) AS history_bytes,
       coalesce(sum(n.uploads), 0) AS uploads,
       coalesce(sum(n.upload_history_bytes), 0) AS upload_history_bytes,
       count(n.node_key) FILTER (WHERE n.last_persist > now() - interval '7 days') AS nodes_persisted_7d
FROM tenants AS t
LEFT JOIN reporting.nodes AS n ON n.tenant = t.slug
GROUP BY t.id, t.slug, t.name, t.created_at, t.disabled_at;

CREATE VIEW reporting.stale_nodes AS
SELECT tenant, node_key, networks, channel_monitors, last_persist, last_restore,
       extract(epoch FROM now() - last_persist)::bigint / 86400 AS days_since_last_persist
FROM reporting.nodes
WHERE channel_monitors > 0;

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'reporting') THEN
        GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO reporting;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Rolling back forgets the upload history (the old table kept whole hashes)
-- and the versions retention deleted; the rest is as in 00008.
-- +goose StatementBegin
DO $$
BEGIN
    RAISE NOTICE 'rolling back 00009 forgets every node''s upload history: replays of earlier uploads are no longer refused';
END
$$;
-- +goose StatementEnd
DROP FUNCTION persist_object(bigint, bytea, text, text, bytea, bytea, bytea, timestamptz, integer, boolean,
    text, integer, bigint, text, integer, bigint, integer, bigint);
DROP FUNCTION rate_count(text, timestamptz, integer, integer);
DROP FUNCTION rate_hit(text, timestamptz, integer, integer);
DROP FUNCTION rate_take(text, timestamptz, integer, integer, bigint);
DROP FUNCTION rate_peek(text, timestamptz, integer, integer);
DROP TABLE rate_limits;
CREATE TABLE rate_limits (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    count        integer NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
-- +goose StatementBegin
CREATE FUNCTION rate_hit(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_window timestamptz;
    v_count integer;
BEGIN
    IF p_limit <= 0 THEN
        RETURN 0;
    END IF;
    v_window := to_timestamp(floor(extract(epoch FROM p_now) / p_window_seconds) * p_window_seconds);
    INSERT INTO rate_limits AS r (key, window_start, count)
    VALUES (p_key, v_window, 1)
    ON CONFLICT (key) DO UPDATE
    SET count = CASE WHEN r.window_start = excluded.window_start THEN r.count + 1 ELSE 1 END,
        window_start = excluded.window_start
    RETURNING r.count INTO v_count;
    IF v_count > p_limit THEN
        RAISE EXCEPTION USING ERRCODE = 'LBL01', MESSAGE = 'rate limit: ' || p_key,
            DETAIL = ceil(extract(epoch FROM v_window + make_interval(secs => p_window_seconds) - p_now))::text;
    END IF;
    RETURN v_count;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION rate_count(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    IF p_limit <= 0 THEN
        RETURN 0;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN rate_hit(p_key, p_now, p_window_seconds, p_limit);
END
$$;
-- +goose StatementEnd

CREATE TABLE node_upload_hashes (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    node_key    bytea NOT NULL CHECK (length(node_key) = 33),
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, node_key, sha256)
);
DROP TABLE upload_hashes;
-- +goose StatementBegin
CREATE FUNCTION persist_object(
    p_tenant bigint, p_node bytea, p_network text, p_label text, p_channel bytea,
    p_payload bytea, p_sha256 bytea, p_now timestamptz, p_retain integer, p_allow_replay boolean,
    p_node_rate_key text, p_node_rate_limit integer, p_new_node_key text, p_new_node_limit integer,
    p_quota_bytes bigint, p_quota_objects integer)
RETURNS TABLE (outcome text, version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_size bigint := length(p_payload);
    v_id bigint;
    v_latest bigint;
    v_sha bytea;
    v_old_size bigint := 0;
    v_new_object boolean := false;
    v_delta bigint;
    v_bytes bigint;
    v_objects integer;
    v_quota_bytes bigint;
    v_quota_objects integer;
BEGIN
    IF p_node_rate_limit > 0 THEN
        PERFORM rate_hit(p_node_rate_key, p_now, 60, p_node_rate_limit);
    END IF;

    LOOP
        SELECT o.id, o.latest_version, o.sha256, o.size INTO v_id, v_latest, v_sha, v_old_size
        FROM objects AS o
        WHERE o.tenant_id = p_tenant AND o.node_key = p_node AND o.network = p_network
          AND o.label = p_label AND o.channel_id = p_channel
        FOR UPDATE;
        EXIT WHEN FOUND;
        INSERT INTO objects AS o (tenant_id, node_key, network, label, channel_id, latest_version, size, sha256, created_at, updated_at)
        VALUES (p_tenant, p_node, p_network, p_label, p_channel, 1, v_size, p_sha256, p_now, p_now)
        ON CONFLICT (tenant_id, node_key, network, label, channel_id) DO NOTHING
        RETURNING o.id INTO v_id;
        IF v_id IS NOT NULL THEN
            v_latest := 1;
            v_old_size := 0;
            v_new_object := true;
            EXIT;
        END IF;
        -- A concurrent first persist of this object won: lock its row.
    END LOOP;

    IF NOT v_new_object THEN
        IF v_sha = p_sha256 THEN
            RETURN QUERY SELECT 'unchanged'::text, v_latest;
            RETURN;
        END IF;
        v_latest := v_latest + 1;
        UPDATE objects AS o
        SET latest_version = v_latest, size = v_size, sha256 = p_sha256, updated_at = p_now
        WHERE o.id = v_id;
    END IF;

    INSERT INTO node_upload_hashes AS h (tenant_id, node_key, sha256, created_at)
    VALUES (p_tenant, p_node, p_sha256, p_now)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND AND NOT p_allow_replay THEN
        RAISE EXCEPTION 'body was uploaded before by this node' USING ERRCODE = 'LBR01';
    END IF;

    -- Usage: the UPDATE's row lock serialises the node's writes. The first
    -- persist of a node creates its row and counts as a new node of its
    -- address.
    v_delta := v_size - v_old_size;
    LOOP
        UPDATE node_usage AS u
        SET bytes = u.bytes + v_delta, objects = u.objects + v_new_object::integer
        WHERE u.tenant_id = p_tenant AND u.node_key = p_node
        RETURNING u.bytes, u.objects,
            coalesce((SELECT q.quota_bytes FROM node_quotas AS q WHERE q.tenant_id = p_tenant AND q.node_key = p_node), p_quota_bytes),
            coalesce((SELECT q.quota_objects FROM node_quotas AS q WHERE q.tenant_id = p_tenant AND q.node_key = p_node), p_quota_objects)
        INTO v_bytes, v_objects, v_quota_bytes, v_quota_objects;
        EXIT WHEN FOUND;
        INSERT INTO node_usage AS u (tenant_id, node_key, first_seen)
        VALUES (p_tenant, p_node, p_now)
        ON CONFLICT DO NOTHING;
        IF FOUND AND p_new_node_limit > 0 THEN
            PERFORM rate_hit(p_new_node_key, p_now, 3600, p_new_node_limit);
        END IF;
    END LOOP;

    IF v_delta > 0 AND v_quota_bytes > 0 AND v_bytes > v_quota_bytes THEN
        RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'LBQ01',
            DETAIL = json_build_object('quota', 'bytes', 'limit', v_quota_bytes, 'used', v_bytes - v_delta, 'requested', v_delta)::text;
    END IF;
    IF v_new_object AND v_quota_objects > 0 AND v_objects > v_quota_objects THEN
        RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'LBQ02',
            DETAIL = json_build_object('quota', 'objects', 'limit', v_quota_objects, 'used', v_objects - 1, 'requested', 1)::text;
    END IF;

    INSERT INTO object_versions (object_id, version, payload, size, sha256, created_at)
    VALUES (v_id, v_latest, p_payload, v_size, p_sha256, p_now);

    IF v_latest > p_retain THEN
        UPDATE object_versions AS v
        SET payload = NULL
        WHERE v.object_id = v_id AND v.version <= v_latest - p_retain AND v.payload IS NOT NULL
          AND (v.pinned_until IS NULL OR v.pinned_until <= p_now);
    END IF;

    RETURN QUERY SELECT 'stored'::text, v_latest;
END
$$;
-- +goose StatementEnd

ALTER TABLE object_versions ALTER COLUMN payload DROP NOT NULL;
CREATE INDEX object_versions_held ON object_versions (object_id, version) WHERE payload IS NOT NULL;
DELETE FROM activity_daily WHERE kind IN ('persist', 'paced');

DROP VIEW reporting.stale_nodes;
DROP VIEW reporting.tenants;
DROP VIEW reporting.daily;
DROP VIEW reporting.nodes;
DROP VIEW reporting.node_quotas;
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

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'reporting') THEN
        GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO reporting;
    END IF;
END
$$;
-- +goose StatementEnd

ALTER TABLE node_quotas DROP COLUMN quota_uploads;
ALTER TABLE node_usage
    DROP CONSTRAINT node_usage_id,
    DROP COLUMN uploads,
    DROP COLUMN id;
