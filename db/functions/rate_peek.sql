-- rate_peek says what rate_take would, without counting: how much of
-- p_key's allowance is taken (p_limit: none is left) and in how many
-- milliseconds one more request would pass (0: now).
CREATE OR REPLACE FUNCTION rate_peek(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer,
                                     OUT used integer, OUT retry_ms bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_ahead double precision;
    v_step double precision;
BEGIN
    used := 0;
    retry_ms := 0;
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    SELECT date_part('epoch', greatest(r.tat, p_now) - p_now) INTO v_ahead FROM rate_limits AS r WHERE r.key = p_key;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_step := rate_step(p_window_seconds, p_limit);
    used := least(ceil(v_ahead / v_step - 0.000001), p_limit)::integer;
    retry_ms := greatest(ceil((v_ahead + v_step - p_window_seconds) * 1000), 0)::bigint;
END
$$;
