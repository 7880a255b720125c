-- +goose Up

-- A retrieve of a large version streams it in chunks, one short query each,
-- holding no connection while the client reads. The version it started on
-- must stay whole until it ends: the retrieve pins it (pinned_until), and
-- retention skips pinned versions. Housekeeping drops what retention skipped
-- once the pin has expired.
ALTER TABLE object_versions ADD COLUMN pinned_until timestamptz;
CREATE INDEX object_versions_pinned ON object_versions (pinned_until) WHERE pinned_until IS NOT NULL;

-- persist_object as in 00006, with retention skipping pinned versions.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION persist_object(
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

-- +goose Down
-- Back to 00006's persist_object.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION persist_object(
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
        WHERE v.object_id = v_id AND v.version <= v_latest - p_retain AND v.payload IS NOT NULL;
    END IF;

    RETURN QUERY SELECT 'stored'::text, v_latest;
END
$$;
-- +goose StatementEnd
DROP INDEX object_versions_pinned;
ALTER TABLE object_versions DROP COLUMN pinned_until;
