-- name: HousekeepingLock :one
-- One replica at a time: a transaction-scoped advisory lock, released at
-- commit, so a replica that dies mid-run holds nothing.
SELECT pg_try_advisory_xact_lock(7385110412001)::boolean AS locked;
