-- name: RateHit :one
-- Counts one request; raises LBL01 past @max. Its commit does not wait for
-- the WAL flush (see rate_count in 00007_rate_count.sql).
SELECT rate_count(@key::text, @now::timestamptz, @window_seconds::integer, @max::integer)::integer AS count;

-- name: RatePeek :one
-- The count of @key in the window starting at @window_start, without
-- counting: for refusing a request before its signature is checked.
SELECT coalesce((SELECT count FROM rate_limits WHERE key = @key AND window_start = @window_start), 0)::integer AS count;

-- name: RateSweep :execrows
-- Drops counters of windows that ended: the table holds only live subjects.
DELETE FROM rate_limits WHERE window_start < @before;
