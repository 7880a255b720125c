-- name: RateHit :one
-- Counts one request; past @max raises its limit's SQLSTATE (rate_take). Its
-- commit does not wait for the WAL flush (db/functions/rate_count.sql).
SELECT rate_count(@key::text, @now::timestamptz, @window_seconds::integer, @max::integer)::integer AS count;

-- name: RatePeek :one
-- How much of a key's allowance is taken, without counting: for refusing a
-- request before its signature is checked (db/functions/rate_peek.sql).
SELECT p.used::integer AS used, p.retry_ms::bigint AS retry_ms
FROM rate_peek(@key::text, @now::timestamptz, @window_seconds::integer, @max::integer) AS p;

-- name: RateSweep :execrows
-- Drops the keys whose allowance has refilled: an absent key is at rest.
DELETE FROM rate_limits WHERE tat < @now;
