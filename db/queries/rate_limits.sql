-- name: RateHit :one
-- Counts one request; raises LBL01 past @max (see rate_hit). The counter's
-- commit does not wait for its WAL to reach the disk: set_config(..., true)
-- turns synchronous_commit off until the end of this statement's own
-- transaction. A crash can lose the last fraction of a second of counts,
-- which costs nothing, and a request no longer waits for a flush to be
-- counted. The change is visible to every replica at once, as before.
-- (persist_object's own rate_hit stays in the persist's durable commit.)
SELECT rate_hit(@key::text, @now::timestamptz, @window_seconds::integer, @max::integer)::integer AS count
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit;

-- name: RatePeek :one
-- The count of @key in the window starting at @window_start, without
-- counting: for refusing a request before its signature is checked.
SELECT coalesce((SELECT count FROM rate_limits WHERE key = @key AND window_start = @window_start), 0)::integer AS count;

-- name: RateSweep :execrows
-- Drops counters of windows that ended: the table holds only live subjects.
DELETE FROM rate_limits WHERE window_start < @before;
