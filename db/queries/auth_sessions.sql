-- name: SessionCreateFromChallenge :one
-- Consumes a live challenge and opens a session for its node in one
-- statement: a challenge yields at most one token, even under concurrent
-- responses. No row means the challenge was already used or has expired.
WITH consumed AS (
    DELETE FROM auth_challenges AS c
    WHERE c.challenge = @challenge
      AND c.tenant_id = @tenant_id
      AND c.node_key = @node_key
      AND c.expires_at > @now
    RETURNING c.tenant_id, c.node_key
)
INSERT INTO auth_sessions (token_hash, tenant_id, node_key, created_at, expires_at)
SELECT @token_hash, consumed.tenant_id, consumed.node_key, @now, @expires_at
FROM consumed
RETURNING expires_at;

-- name: SessionDeleteExpiredForNode :exec
DELETE FROM auth_sessions
WHERE tenant_id = @tenant_id
  AND node_key = @node_key
  AND expires_at <= @now;

-- name: SessionGetNode :one
SELECT node_key, expires_at
FROM auth_sessions
WHERE token_hash = @token_hash
  AND tenant_id = @tenant_id
  AND expires_at > @now;

-- name: SessionDeleteExpired :execrows
DELETE FROM auth_sessions WHERE expires_at <= @now;
