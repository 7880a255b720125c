-- rate_hit counts one request that is refused, not paced, past the limit.
CREATE OR REPLACE FUNCTION rate_hit(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer)
RETURNS integer
LANGUAGE sql AS $$
    SELECT t.used FROM rate_take(p_key, p_now, p_window_seconds, p_limit, 0) AS t
$$;
