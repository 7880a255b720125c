-- vss_put applies one VSS write (putObjects, or a lone deleteObject) in one
-- round trip, with every rule of a write in the same transaction, as the
-- reference store applies it: the put items in order, then the global
-- version (when p_global_version is not NULL, as a put of the key
-- 'global_version' with that version), then the delete items in order.
--   put version 0     inserts; the key must not exist;
--   put version -1    writes whatever is there; the version becomes 1;
--   put version N > 0 the key must be at version N; it becomes N + 1;
--   delete -1         the key must exist; otherwise it must be at that version.
-- Any item that does not match raises LBV01, which undoes every item: the
-- request changes nothing. With p_missing_ok (a lone deleteObject, which is
-- idempotent) a delete that matches nothing is no failure. Versions below
-- -1 are refused before this runs (internal/vss) and never match here.
-- Outcomes:
--   'stored'  applied;
--   'paced'   the user's allowance (p_rate_limit a minute) is used up and
--             its turn comes in wait_ms (at most p_pace_max_ms): the turn is
--             taken and nothing else is written. The caller waits and calls
--             again with p_rate_limit 0.
-- Refusals raise, each with v1's SQLSTATE for the same limit (mapped in
-- internal/postgres): LBL02/LBL03 from rate_take (the user's turn further
-- than p_pace_max_ms; new users of the address past p_new_user_limit an
-- hour), LBQ01/LBQ02 (bytes, objects quota; DETAIL is JSON). Quotas are
-- the user's own (vss_user_quotas), else p_quota_*; limits and quotas
-- <= 0 are off. The user's usage row is locked first and serialises all of
-- its writes, so usage is exact after any interleaving.
CREATE OR REPLACE FUNCTION vss_put(
    p_tenant bigint, p_user text, p_store text,
    p_put_keys text[], p_put_values bytea[], p_put_versions bigint[], p_global_version bigint,
    p_delete_keys text[], p_delete_versions bigint[], p_missing_ok boolean, p_now timestamptz,
    p_rate_key text, p_rate_limit integer, p_pace_max_ms bigint,
    p_new_user_key text, p_new_user_limit integer,
    p_quota_bytes bigint, p_quota_objects integer)
RETURNS TABLE (outcome text, wait_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_wait bigint;
    v_user bigint;
    v_bytes bigint;
    v_objects integer;
    v_quota_bytes bigint;
    v_quota_objects integer;
    v_dbytes bigint := 0;
    v_dobjects integer := 0;
    v_key text;
    v_value bytea;
    v_want bigint;
    v_version bigint;
    v_size bigint;
BEGIN
    IF p_rate_limit > 0 THEN
        SELECT t.wait_ms INTO v_wait FROM rate_take(p_rate_key, p_now, 60, p_rate_limit, p_pace_max_ms) AS t;
        IF v_wait > 0 THEN
            RETURN QUERY SELECT 'paced'::text, v_wait;
            RETURN;
        END IF;
    END IF;

    IF p_global_version IS NOT NULL THEN
        p_put_keys := p_put_keys || 'global_version'::text;
        p_put_values := p_put_values || '\x'::bytea;
        p_put_versions := p_put_versions || p_global_version;
    END IF;

    -- The user's row, locked: its first write creates it (and counts as a
    -- new user of its address). A request of deletes only creates no row:
    -- a user without one has nothing to delete.
    LOOP
        SELECT u.id, u.bytes, u.objects,
               coalesce(q.quota_bytes, p_quota_bytes), coalesce(q.quota_objects, p_quota_objects)
        INTO v_user, v_bytes, v_objects, v_quota_bytes, v_quota_objects
        FROM vss_users AS u
        LEFT JOIN vss_user_quotas AS q ON q.tenant_id = u.tenant_id AND q.user_token = u.user_token
        WHERE u.tenant_id = p_tenant AND u.user_token = p_user
        FOR UPDATE OF u;
        EXIT WHEN FOUND;
        IF coalesce(cardinality(p_put_keys), 0) = 0 THEN
            IF coalesce(cardinality(p_delete_keys), 0) > 0 AND NOT p_missing_ok THEN
                RAISE EXCEPTION 'version conflict' USING ERRCODE = 'LBV01';
            END IF;
            RETURN QUERY SELECT 'stored'::text, 0::bigint;
            RETURN;
        END IF;
        INSERT INTO vss_users AS u (tenant_id, user_token, first_seen)
        VALUES (p_tenant, p_user, p_now)
        ON CONFLICT DO NOTHING;
        IF FOUND AND p_new_user_limit > 0 THEN
            PERFORM rate_hit(p_new_user_key, p_now, 3600, p_new_user_limit);
        END IF;
    END LOOP;

    FOR i IN 1 .. coalesce(cardinality(p_put_keys), 0) LOOP
        v_key := p_put_keys[i];
        v_value := coalesce(p_put_values[i], '\x'::bytea);
        v_want := p_put_versions[i];
        SELECT o.version, o.size INTO v_version, v_size
        FROM vss_objects AS o
        WHERE o.user_id = v_user AND o.store_id = p_store AND o.key = v_key;
        IF NOT FOUND THEN
            IF v_want <> 0 AND v_want <> -1 THEN
                RAISE EXCEPTION 'version conflict' USING ERRCODE = 'LBV01';
            END IF;
            INSERT INTO vss_objects (user_id, store_id, key, value, size, version, created_at, updated_at)
            VALUES (v_user, p_store, v_key, v_value, length(v_value), 1, p_now, p_now);
            v_dbytes := v_dbytes + length(v_value);
            v_dobjects := v_dobjects + 1;
        ELSE
            IF v_want <> -1 AND v_want <> v_version THEN
                RAISE EXCEPTION 'version conflict' USING ERRCODE = 'LBV01';
            END IF;
            UPDATE vss_objects AS o
            SET value = v_value, size = length(v_value), revision = o.revision + 1, updated_at = p_now,
                version = CASE WHEN v_want = -1 THEN 1
                               WHEN v_want = 9223372036854775807 THEN v_want
                               ELSE v_want + 1 END
            WHERE o.user_id = v_user AND o.store_id = p_store AND o.key = v_key;
            v_dbytes := v_dbytes + length(v_value) - v_size;
        END IF;
    END LOOP;

    FOR i IN 1 .. coalesce(cardinality(p_delete_keys), 0) LOOP
        v_want := p_delete_versions[i];
        DELETE FROM vss_objects AS o
        WHERE o.user_id = v_user AND o.store_id = p_store AND o.key = p_delete_keys[i]
          AND (v_want = -1 OR o.version = v_want)
        RETURNING o.size INTO v_size;
        IF FOUND THEN
            v_dbytes := v_dbytes - v_size;
            v_dobjects := v_dobjects - 1;
        ELSIF NOT p_missing_ok THEN
            RAISE EXCEPTION 'version conflict' USING ERRCODE = 'LBV01';
        END IF;
    END LOOP;

    IF v_dbytes > 0 AND v_quota_bytes > 0 AND v_bytes + v_dbytes > v_quota_bytes THEN
        RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'LBQ01',
            DETAIL = json_build_object('quota', 'bytes', 'limit', v_quota_bytes, 'used', v_bytes, 'requested', v_dbytes)::text;
    END IF;
    IF v_dobjects > 0 AND v_quota_objects > 0 AND v_objects + v_dobjects > v_quota_objects THEN
        RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'LBQ02',
            DETAIL = json_build_object('quota', 'objects', 'limit', v_quota_objects, 'used', v_objects, 'requested', v_dobjects)::text;
    END IF;
    UPDATE vss_users AS u
    SET bytes = u.bytes + v_dbytes, objects = u.objects + v_dobjects, last_write = p_now
    WHERE u.id = v_user;

    RETURN QUERY SELECT 'stored'::text, 0::bigint;
END
$$;
