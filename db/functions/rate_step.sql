-- rate_step is the seconds one request takes of an allowance of p_limit per
-- p_window_seconds, as rate_take counts and rate_peek reads it. timestamptz
-- counts microseconds: a limit above one a microsecond is one a microsecond.
CREATE OR REPLACE FUNCTION rate_step(p_window_seconds integer, p_limit integer)
RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT greatest(p_window_seconds::double precision / p_limit, 0.000001)
$$;
