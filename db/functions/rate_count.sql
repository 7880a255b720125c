-- rate_count is rate_hit (rate_take without a wait) for a request that writes nothing durable of its
-- own (a login, a read): its transaction does not wait for the WAL flush,
-- since a count lost in a crash costs nothing. set_config(..., true) lasts
-- until the end of the calling transaction. A limit of 0 changes nothing, so
-- a read inside a durable transaction may pass 0.
CREATE OR REPLACE FUNCTION rate_count(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    IF p_limit <= 0 THEN
        RETURN 0;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN (rate_take(p_key, p_now, p_window_seconds, p_limit, 0)).used;
END
$$;
