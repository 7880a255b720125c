-- name: ChallengeLockNode :exec
-- Holds the node's challenge lock until the transaction ends, so one node's
-- ChallengeCreate statements run one after another. It must be a statement
-- of its own, before ChallengeCreate: a statement reads from the snapshot
-- it started with, so a lock taken inside ChallengeCreate would still leave
-- it blind to challenges committed while it waited, and concurrent creations
-- would each keep keep_existing rows of their own. Two-key form (class
-- 'chlg', hash of tenant and node): apart from the one-key locks of
-- housekeeping and goose; two nodes whose hashes collide merely wait for
-- each other.
SELECT pg_advisory_xact_lock(1667787879, hashtext((@tenant_id::bigint)::text || '/' || encode(@node_key::bytea, 'hex')));

-- name: ChallengeCreate :exec
-- Inserts a new challenge and, in the same statement, drops the node's
-- expired ones and all but its newest @keep_existing live ones, so a node can
-- neither pile up rows nor make a response check more than keep_existing+1.
-- Exact under concurrency only after ChallengeLockNode in the same
-- (read committed) transaction.
WITH pruned AS (
    DELETE FROM auth_challenges AS c
    WHERE c.tenant_id = @tenant_id
      AND c.node_key = @node_key
      AND (c.expires_at <= @now
           OR c.challenge IN (
               SELECT l.challenge
               FROM auth_challenges AS l
               WHERE l.tenant_id = @tenant_id
                 AND l.node_key = @node_key
                 AND l.expires_at > @now
               ORDER BY l.created_at DESC
               OFFSET @keep_existing::int))
)
INSERT INTO auth_challenges (challenge, tenant_id, node_key, created_at, expires_at)
VALUES (@challenge, @tenant_id, @node_key, @now, @expires_at);

-- name: ChallengeListLive :many
SELECT challenge
FROM auth_challenges
WHERE tenant_id = @tenant_id
  AND node_key = @node_key
  AND expires_at > @now
ORDER BY created_at DESC;

-- name: ChallengeDeleteExpired :execrows
DELETE FROM auth_challenges WHERE expires_at <= @now;
