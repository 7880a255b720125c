-- +goose Up

-- What each node stores, counted by persist_object in the same transaction
-- as the write, so concurrent persists can never take a node past its quota.
-- bytes is the sum of the latest versions' sizes, objects their number.
CREATE TABLE node_usage (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    node_key    bytea NOT NULL CHECK (length(node_key) = 33),
    bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    objects     integer NOT NULL DEFAULT 0 CHECK (objects >= 0),
    first_seen  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, node_key)
);

INSERT INTO node_usage (tenant_id, node_key, bytes, objects, first_seen)
SELECT tenant_id, node_key, sum(size), count(*), min(created_at)
FROM objects
GROUP BY tenant_id, node_key;

-- An operator's per-node quotas; NULL: the tenant's, else the server's.
CREATE TABLE node_quotas (
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    node_key      bytea NOT NULL CHECK (length(node_key) = 33),
    quota_bytes   bigint CHECK (quota_bytes > 0),
    quota_objects integer CHECK (quota_objects > 0),
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, node_key)
);

-- Fixed-window rate counters shared by every replica: one row per limited
-- subject (an address, a node), reset when its window moves on. Rows of
-- past windows are swept by housekeeping.
CREATE TABLE rate_limits (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    count        integer NOT NULL
);

CREATE INDEX rate_limits_window ON rate_limits (window_start);

-- Refusals of a node's own requests (quota, rate), one row per node, day and
-- kind, for `server node show` and reports.
CREATE TABLE node_refusals (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    node_key    bytea NOT NULL CHECK (length(node_key) = 33),
    day         date NOT NULL,
    kind        text NOT NULL,
    count       bigint NOT NULL,
    last_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, node_key, day, kind)
);

-- rate_hit counts one request against p_key in the fixed window of
-- p_window_seconds that holds p_now, and raises SQLSTATE LBL01 (its MESSAGE
-- names the key, its DETAIL the seconds until the window ends) when that makes
-- more than p_limit. Raised
-- inside a larger statement it undoes that statement, so a refused request
-- is not counted. p_limit <= 0: no limit, nothing counted.
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

DROP FUNCTION persist_object(bigint, bytea, text, text, bytea, bytea, bytea, timestamptz, integer, boolean);

-- persist_object stores a new version of one object in one round trip (see
-- 00003_versions.sql for versions, retries and replays) and enforces the
-- node's limits in the same transaction:
--   p_node_rate_key/p_node_rate_limit   this node's requests per minute;
--   p_new_node_key/p_new_node_limit     new nodes per address per hour, when
--                                       this is the node's first persist;
--   p_quota_bytes/p_quota_objects       the tenant's (or server's) quotas,
--                                       unless node_quotas has the node's own.
-- Limits <= 0 are off. Refusals raise, so nothing is written: LBL01 (rate),
-- LBQ01 (bytes quota), LBQ02 (objects quota), LBR01 (replay).
-- +goose StatementBegin
CREATE FUNCTION persist_object(
    p_tenant bigint, p_node bytea, p_network text, p_label text, p_channel bytea,
    p_payload bytea, p_sha256 bytea, p_now timestamptz, p_retain integer, p_allow_replay boolean,
    p_node_rate_key text, p_node_rate_limit integer, p_new_node_key text, p_new_node_limit integer,
    p_quota_bytes bigint, p_quota_objects integer)
RETURNS TABLE (outcome text, version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_latest bigint;
    v_sha bytea;
    v_old_size bigint := 0;
    v_new_object boolean := false;
    v_delta bigint;
    v_used_bytes bigint;
    v_used_objects integer;
    v_quota_bytes bigint;
    v_quota_objects integer;
BEGIN
    PERFORM rate_hit(p_node_rate_key, p_now, 60, p_node_rate_limit);

    INSERT INTO objects AS o (tenant_id, node_key, network, label, channel_id, latest_version, size, sha256, created_at, updated_at)
    VALUES (p_tenant, p_node, p_network, p_label, p_channel, 1, length(p_payload), p_sha256, p_now, p_now)
    ON CONFLICT (tenant_id, node_key, network, label, channel_id) DO NOTHING
    RETURNING o.id INTO v_id;

    IF v_id IS NOT NULL THEN
        v_latest := 1;
        v_new_object := true;
    ELSE
        SELECT o.id, o.latest_version, o.sha256, o.size INTO v_id, v_latest, v_sha, v_old_size
        FROM objects AS o
        WHERE o.tenant_id = p_tenant AND o.node_key = p_node AND o.network = p_network
          AND o.label = p_label AND o.channel_id = p_channel
        FOR UPDATE;
        IF v_sha = p_sha256 THEN
            RETURN QUERY SELECT 'unchanged'::text, v_latest;
            RETURN;
        END IF;
        v_latest := v_latest + 1;
        UPDATE objects AS o
        SET latest_version = v_latest, size = length(p_payload), sha256 = p_sha256, updated_at = p_now
        WHERE o.id = v_id;
    END IF;

    INSERT INTO node_upload_hashes AS h (tenant_id, node_key, sha256, created_at)
    VALUES (p_tenant, p_node, p_sha256, p_now)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND AND NOT p_allow_replay THEN
        RAISE EXCEPTION 'body was uploaded before by this node' USING ERRCODE = 'LBR01';
    END IF;

    -- Usage: the first persist of a node creates its row (and counts as a
    -- new account of its address); the row lock serialises the node's writes.
    INSERT INTO node_usage AS u (tenant_id, node_key, first_seen)
    VALUES (p_tenant, p_node, p_now)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        PERFORM rate_hit(p_new_node_key, p_now, 3600, p_new_node_limit);
    END IF;
    SELECT u.bytes, u.objects INTO v_used_bytes, v_used_objects
    FROM node_usage AS u
    WHERE u.tenant_id = p_tenant AND u.node_key = p_node
    FOR UPDATE;
    SELECT coalesce(q.quota_bytes, p_quota_bytes), coalesce(q.quota_objects, p_quota_objects)
    INTO v_quota_bytes, v_quota_objects
    FROM (SELECT 1) AS one
    LEFT JOIN node_quotas AS q ON q.tenant_id = p_tenant AND q.node_key = p_node;

    v_delta := length(p_payload) - v_old_size;
    IF v_delta > 0 AND v_quota_bytes > 0 AND v_used_bytes + v_delta > v_quota_bytes THEN
        RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'LBQ01',
            DETAIL = json_build_object('quota', 'bytes', 'limit', v_quota_bytes, 'used', v_used_bytes, 'requested', v_delta)::text;
    END IF;
    IF v_new_object AND v_quota_objects > 0 AND v_used_objects + 1 > v_quota_objects THEN
        RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'LBQ02',
            DETAIL = json_build_object('quota', 'objects', 'limit', v_quota_objects, 'used', v_used_objects, 'requested', 1)::text;
    END IF;
    UPDATE node_usage AS u
    SET bytes = u.bytes + v_delta, objects = u.objects + v_new_object::integer
    WHERE u.tenant_id = p_tenant AND u.node_key = p_node;

    INSERT INTO object_versions (object_id, version, payload, size, sha256, created_at)
    VALUES (v_id, v_latest, p_payload, length(p_payload), p_sha256, p_now);

    UPDATE object_versions AS v
    SET payload = NULL
    WHERE v.object_id = v_id AND v.version <= v_latest - p_retain AND v.payload IS NOT NULL;

    RETURN QUERY SELECT 'stored'::text, v_latest;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION persist_object(bigint, bytea, text, text, bytea, bytea, bytea, timestamptz, integer, boolean,
    text, integer, text, integer, bigint, integer);
DROP FUNCTION rate_hit;
-- Back to version 3's persist_object.
-- +goose StatementBegin
CREATE FUNCTION persist_object(
    p_tenant bigint, p_node bytea, p_network text, p_label text, p_channel bytea,
    p_payload bytea, p_sha256 bytea, p_now timestamptz, p_retain integer, p_allow_replay boolean)
RETURNS TABLE (outcome text, version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_latest bigint;
    v_sha bytea;
BEGIN
    INSERT INTO objects AS o (tenant_id, node_key, network, label, channel_id, latest_version, size, sha256, created_at, updated_at)
    VALUES (p_tenant, p_node, p_network, p_label, p_channel, 1, length(p_payload), p_sha256, p_now, p_now)
    ON CONFLICT (tenant_id, node_key, network, label, channel_id) DO NOTHING
    RETURNING o.id INTO v_id;

    IF v_id IS NOT NULL THEN
        v_latest := 1;
    ELSE
        SELECT o.id, o.latest_version, o.sha256 INTO v_id, v_latest, v_sha
        FROM objects AS o
        WHERE o.tenant_id = p_tenant AND o.node_key = p_node AND o.network = p_network
          AND o.label = p_label AND o.channel_id = p_channel
        FOR UPDATE;
        IF v_sha = p_sha256 THEN
            RETURN QUERY SELECT 'unchanged'::text, v_latest;
            RETURN;
        END IF;
        v_latest := v_latest + 1;
        UPDATE objects AS o
        SET latest_version = v_latest, size = length(p_payload), sha256 = p_sha256, updated_at = p_now
        WHERE o.id = v_id;
    END IF;

    INSERT INTO node_upload_hashes AS h (tenant_id, node_key, sha256, created_at)
    VALUES (p_tenant, p_node, p_sha256, p_now)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND AND NOT p_allow_replay THEN
        RAISE EXCEPTION 'body was uploaded before by this node' USING ERRCODE = 'LBR01';
    END IF;

    INSERT INTO object_versions (object_id, version, payload, size, sha256, created_at)
    VALUES (v_id, v_latest, p_payload, length(p_payload), p_sha256, p_now);

    UPDATE object_versions AS v
    SET payload = NULL
    WHERE v.object_id = v_id AND v.version <= v_latest - p_retain AND v.payload IS NOT NULL;

    RETURN QUERY SELECT 'stored'::text, v_latest;
END
$$;
-- +goose StatementEnd
DROP TABLE node_refusals;
DROP TABLE rate_limits;
DROP TABLE node_quotas;
DROP TABLE node_usage;
