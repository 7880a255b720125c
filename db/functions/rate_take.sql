-- rate_take counts one request against p_key's allowance of p_limit per
-- p_window_seconds. When the allowance is used up, the request may wait up to
-- p_max_wait_ms for its turn: the turn is taken now (so replicas agree on the
-- order) and wait_ms says how long to wait. Past p_max_wait_ms it raises
-- the SQLSTATE of the key's limit, and, raised inside a statement, undoes
-- it: a refused request is not counted. A key's first field names its limit
-- (internal/backup builds the keys): addr LBL01 (requests per address),
-- node LBL02 (requests per node), new LBL03 (new nodes per address). DETAIL
-- is JSON: the limit and retry_after_ms, how long until a request would
-- pass. used is how much of the allowance is taken after this request
-- (p_limit: none is left). p_limit <= 0: no limit.
CREATE OR REPLACE FUNCTION rate_take(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer, p_max_wait_ms bigint,
                                     OUT wait_ms bigint, OUT used integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_step_s double precision;
    v_step interval;
    v_tat timestamptz;
    v_ahead double precision;
BEGIN
    wait_ms := 0;
    used := 0;
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    -- Arithmetic in double precision (date_part), not numeric (extract):
    -- this runs for every counted request.
    v_step_s := rate_step(p_window_seconds, p_limit);
    v_step := make_interval(secs => v_step_s);
    INSERT INTO rate_limits AS r (key, tat)
    VALUES (p_key, p_now + v_step)
    ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, p_now) + v_step
    RETURNING r.tat INTO v_tat;
    v_ahead := date_part('epoch', v_tat - p_now);
    wait_ms := greatest(ceil((v_ahead - p_window_seconds) * 1000), 0)::bigint;
    IF wait_ms > greatest(p_max_wait_ms, 0) THEN
        RAISE EXCEPTION USING
            ERRCODE = CASE split_part(p_key, ':', 1) WHEN 'node' THEN 'LBL02' WHEN 'new' THEN 'LBL03' ELSE 'LBL01' END,
            MESSAGE = 'rate limit exceeded',
            DETAIL = json_build_object('limit', p_limit, 'retry_after_ms', wait_ms)::text;
    END IF;
    used := least(ceil(v_ahead / v_step_s - 0.000001), p_limit)::integer;
END
$$;
