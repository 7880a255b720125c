-- persist_object stores a new version of one object in one round trip, with
-- every rule of a write in the same transaction. Outcomes:
--   'stored'     a new version (returned) was written;
--   'unchanged'  the body equals the latest version: nothing written (a
--                retry of a persist that succeeded);
--   'paced'      the node's allowance (p_node_rate_limit a minute) is used up
--                and its turn comes in wait_ms (at most p_pace_max_ms): the
--                turn is taken and nothing else is written. The caller waits
--                and calls again with p_node_rate_limit 0.
-- Refusals raise, so nothing is written, each with its own SQLSTATE (mapped
-- in internal/postgres): LBL02 (the node's turn further than p_pace_max_ms),
-- LBL03 (new nodes of the address past p_new_node_limit an hour; both from
-- rate_take), LBQ01/LBQ02/LBQ03 (bytes, objects, uploads quota; DETAIL is
-- JSON), LBR01 (a replay: the node uploaded these bytes before under any
-- object; p_allow_replay lets an operator restore an old version). Quotas are the
-- node's own (node_quotas), else p_quota_*; limits and quotas <= 0 are off.
-- Retention deletes the versions older than the newest p_retain, except one
-- a streaming retrieve has pinned (housekeeping deletes it later).
CREATE OR REPLACE FUNCTION persist_object(
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
