-- name: SessionCreateFromChallenge :one
-- Consumes a live challenge and opens a session for its node in one
-- statement: a challenge yields at most one token, even under concurrent
-- responses. No row means the challenge was already used or has expired, and
-- then nothing changes. With a session, the same statement drops the node's
-- expired sessions and marks its last restore (a login is a restore: reports
-- show each node's last one): one round trip instead of a transaction of
-- three statements.
WITH consumed AS (
    DELETE FROM auth_challenges AS c
    WHERE c.challenge = @challenge
      AND c.tenant_id = @tenant_id
      AND c.node_key = @node_key
      AND c.expires_at > @now
    RETURNING c.tenant_id, c.node_key
), opened AS (
    INSERT INTO auth_sessions (token_hash, tenant_id, node_key, created_at, expires_at)
    SELECT @token_hash, consumed.tenant_id, consumed.node_key, @now, @expires_at
    FROM consumed
    RETURNING expires_at
), expired AS (
    DELETE FROM auth_sessions AS s
    WHERE s.tenant_id = @tenant_id
      AND s.node_key = @node_key
      AND s.expires_at <= @now
      AND EXISTS (SELECT 1 FROM consumed)
), marked AS (
    UPDATE node_usage AS u
    SET last_restore = @now::timestamptz
    WHERE u.tenant_id = @tenant_id
      AND u.node_key = @node_key
      AND EXISTS (SELECT 1 FROM consumed)
)
SELECT opened.expires_at FROM opened;

-- name: SessionGetNode :one
SELECT node_key, expires_at
FROM auth_sessions
WHERE token_hash = @token_hash
  AND tenant_id = @tenant_id
  AND expires_at > @now;

-- name: SessionDeleteExpired :execrows
DELETE FROM auth_sessions WHERE expires_at <= @now;
