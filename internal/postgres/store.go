package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/dbsqlc"
)

// Store implements the domain's stores on the generated queries.
type Store struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
}

// NewStore wraps pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, q: dbsqlc.New(pool)}
}

// WithTx runs fn in one transaction and commits it; fn's error, or a failed
// commit, rolls it back. Serialization failures and deadlocks are retried.
func (s *Store) WithTx(ctx context.Context, fn func(q *dbsqlc.Queries) error) error {
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(s.q.WithTx(tx)) })
		if !isRetryable(err) {
			break
		}
	}
	return interpretError(err)
}

// PutObject stores payload as the next version of its object, in one round
// trip, and returns after commit.
// The node's rate limit, new-node limit and quotas are enforced by the same
// statement; a refusal of the node's own request is recorded.
func (s *Store) PutObject(ctx context.Context, key backup.ObjectKey, payload []byte, sum [sha256.Size]byte, now time.Time, retain int, limits backup.WriteLimits) (backup.PutResult, error) {
	res, err := s.persist(ctx, s.q, key, payload, sum[:], now, retain, false, limits)
	s.recordIfRefused(ctx, key.Tenant, key.Node, err, now)
	return res, err
}

func (s *Store) persist(ctx context.Context, q *dbsqlc.Queries, key backup.ObjectKey, payload, sum []byte, now time.Time, retain int, allowReplay bool, limits backup.WriteLimits) (backup.PutResult, error) {
	row, err := q.ObjectPersist(ctx, dbsqlc.ObjectPersistParams{
		TenantID:      int64(key.Tenant),
		NodeKey:       key.Node[:],
		Network:       string(key.Network),
		Label:         key.Label,
		ChannelID:     channelIDBytes(key.ChannelID),
		Payload:       payload,
		Sha256:        sum,
		Now:           now,
		Retain:        int32(retain),
		AllowReplay:   allowReplay,
		NodeRateKey:   limits.NodeRateKey,
		NodeRateLimit: clampInt32(limits.NodePerMinute),
		PaceMaxMs:     limits.PaceMaxWait.Milliseconds(),
		NewNodeKey:    limits.NewNodeKey,
		NewNodeLimit:  clampInt32(limits.NewNodesPerHour),
		QuotaBytes:    limits.QuotaBytes,
		QuotaObjects:  clampInt32(limits.QuotaObjects),
		QuotaUploads:  limits.QuotaUploads,
	})
	if err != nil {
		return backup.PutResult{}, interpretError(err)
	}
	return backup.PutResult{
		Version:   row.Version,
		Unchanged: row.Outcome == "unchanged",
		Wait:      time.Duration(row.WaitMs) * time.Millisecond,
	}, nil
}

// GetObject returns the bytes of one version of an object (0: the latest)
// and counts the read against the node's rate limit in the same round trip;
// a refusal of the node's read is recorded.
func (s *Store) GetObject(ctx context.Context, key backup.ObjectKey, version int64, now time.Time, limit backup.ReadLimit) ([]byte, error) {
	payload, err := getPayload(ctx, s.q, key, version, now, limit)
	s.recordIfRefused(ctx, key.Tenant, key.Node, err, now)
	return payload, interpretError(err)
}

// getPayload reads one version's bytes; backup.ErrPayloadDropped when
// retention has dropped them. Inside a durable transaction limit must be the
// zero ReadLimit (see rate_count).
func getPayload(ctx context.Context, q *dbsqlc.Queries, key backup.ObjectKey, version int64, now time.Time, limit backup.ReadLimit) ([]byte, error) {
	row, err := q.ObjectGetPayload(ctx, dbsqlc.ObjectGetPayloadParams{
		RateKey:       limit.NodeRateKey,
		Now:           now,
		WindowSeconds: backup.MinuteWindow,
		RateLimit:     clampInt32(limit.NodePerMinute),
		TenantID:      int64(key.Tenant),
		NodeKey:       key.Node[:],
		Network:       string(key.Network),
		Label:         key.Label,
		ChannelID:     channelIDBytes(key.ChannelID),
		Version:       version,
	})
	switch {
	case err != nil:
		return nil, err
	case !row.Found:
		return nil, backup.ErrNotFound
	case row.Payload == nil:
		return nil, backup.ErrPayloadDropped
	}
	return row.Payload, nil
}

// ObjectVersions returns an object's versions below before, newest first.
func (s *Store) ObjectVersions(ctx context.Context, key backup.ObjectKey, before int64, limit int) ([]backup.VersionInfo, error) {
	rows, err := s.q.ObjectVersionList(ctx, dbsqlc.ObjectVersionListParams{
		TenantID:  int64(key.Tenant),
		NodeKey:   key.Node[:],
		Network:   string(key.Network),
		Label:     key.Label,
		ChannelID: channelIDBytes(key.ChannelID),
		Before:    before,
		MaxRows:   int32(limit),
	})
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]backup.VersionInfo, len(rows))
	for i, r := range rows {
		out[i] = backup.VersionInfo{Version: r.Version, Size: r.Size, SHA256: hex.EncodeToString(r.Sha256), CreatedAt: r.CreatedAt, Held: r.Held}
	}
	return out, nil
}

// DeleteObjects removes every object and version of a node on a network and
// records the deletion in the audit log, in one transaction.
func (s *Store) DeleteObjects(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, network backup.Network, now time.Time) (backup.Deletion, error) {
	var d backup.Deletion
	err := s.WithTx(ctx, func(q *dbsqlc.Queries) error {
		gone, err := q.ObjectDeleteNodeNetwork(ctx, dbsqlc.ObjectDeleteNodeNetworkParams{TenantID: int64(tenant), NodeKey: node[:], Network: string(network)})
		if err != nil {
			return err
		}
		d = backup.Deletion{Objects: gone.Objects, Versions: gone.Versions, Bytes: gone.HeldBytes}
		return s.audit(ctx, q, tenant, node, "account_deleted", network, d, now)
	})
	return d, err
}

// RestoreVersion makes a copy of an old version the object's latest
// version: an operator's way back from a bad upload. The replay rule does
// not apply, and the audit log records it.
func (s *Store) RestoreVersion(ctx context.Context, key backup.ObjectKey, version int64, now time.Time, retain int) (backup.PutResult, error) {
	var res backup.PutResult
	err := s.WithTx(ctx, func(q *dbsqlc.Queries) error {
		payload, err := getPayload(ctx, q, key, version, now, backup.ReadLimit{})
		if err != nil {
			return err
		}
		sum := sha256.Sum256(payload)
		// An operator's restore is not held to the node's rate or quota.
		if res, err = s.persist(ctx, q, key, payload, sum[:], now, retain, true, backup.WriteLimits{}); err != nil {
			return err
		}
		detail := map[string]any{"label": key.Label, "channel_id": hex.EncodeToString(key.ChannelID), "from_version": version, "new_version": res.Version, "unchanged": res.Unchanged}
		return s.audit(ctx, q, key.Tenant, key.Node, "version_restored", key.Network, detail, now)
	})
	return res, err
}

func (s *Store) audit(ctx context.Context, q *dbsqlc.Queries, tenant backup.TenantID, node backup.NodeKey, action string, network backup.Network, detail any, now time.Time) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	return q.AuditInsert(ctx, dbsqlc.AuditInsertParams{TenantID: int64(tenant), NodeKey: node[:], Action: action, Network: string(network), Detail: b, Now: now})
}

// ListObjectKeys returns the keys of a node's objects on one network and
// counts the list against the node's rate limit in the same round trip; a
// refusal of the node's list is recorded.
func (s *Store) ListObjectKeys(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, network backup.Network, now time.Time, limit backup.ReadLimit) ([]backup.StoredKey, error) {
	rows, err := s.q.ObjectListKeys(ctx, dbsqlc.ObjectListKeysParams{
		RateKey:       limit.NodeRateKey,
		Now:           now,
		WindowSeconds: backup.MinuteWindow,
		RateLimit:     clampInt32(limit.NodePerMinute),
		TenantID:      int64(tenant),
		NodeKey:       node[:],
		Network:       string(network),
	})
	if err != nil {
		s.recordIfRefused(ctx, tenant, node, err, now)
		return nil, interpretError(err)
	}
	keys := make([]backup.StoredKey, 0, len(rows))
	for _, r := range rows {
		if r.Found {
			keys = append(keys, backup.StoredKey{Label: r.Label, ChannelID: r.ChannelID})
		}
	}
	return keys, nil
}

// CreateChallenge stores a challenge and prunes the node's old ones. The
// node's creations take turns (ChallengeLockNode), each in a read committed
// transaction whose prune sees every challenge committed before it: without
// that, concurrent logins of one node each pruned to keepExisting in their
// own snapshot and left more than keepExisting+1 live. Read committed is
// asked for, not assumed: under a stricter default the prune would read the
// snapshot taken before the lock was granted.
func (s *Store) CreateChallenge(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, challenge []byte, now, expires time.Time, keepExisting int) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.ChallengeLockNode(ctx, dbsqlc.ChallengeLockNodeParams{TenantID: int64(tenant), NodeKey: node[:]}); err != nil {
			return err
		}
		return q.ChallengeCreate(ctx, dbsqlc.ChallengeCreateParams{
			TenantID:     int64(tenant),
			NodeKey:      node[:],
			Now:          now,
			KeepExisting: int32(keepExisting),
			Challenge:    challenge,
			ExpiresAt:    expires,
		})
	})
	return interpretError(err)
}

// LiveChallenges returns the node's unexpired challenges, newest first.
func (s *Store) LiveChallenges(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, now time.Time) ([][]byte, error) {
	c, err := s.q.ChallengeListLive(ctx, dbsqlc.ChallengeListLiveParams{TenantID: int64(tenant), NodeKey: node[:], Now: now})
	return c, interpretError(err)
}

// CreateSession consumes a live challenge and stores the session, drops the
// node's expired sessions and marks its restore, in one statement;
// backup.ErrNotFound when the challenge is not live.
func (s *Store) CreateSession(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, challenge, tokenHash []byte, now, expires time.Time) error {
	_, err := s.q.SessionCreateFromChallenge(ctx, dbsqlc.SessionCreateFromChallengeParams{
		TokenHash: tokenHash,
		Now:       now,
		ExpiresAt: expires,
		Challenge: challenge,
		TenantID:  int64(tenant),
		NodeKey:   node[:],
	})
	return interpretError(err)
}

// SessionNode returns the node of a live session and when it expires.
func (s *Store) SessionNode(ctx context.Context, tenant backup.TenantID, tokenHash []byte, now time.Time) (backup.NodeKey, time.Time, error) {
	row, err := s.q.SessionGetNode(ctx, dbsqlc.SessionGetNodeParams{TokenHash: tokenHash, TenantID: int64(tenant), Now: now})
	if err != nil {
		return backup.NodeKey{}, time.Time{}, interpretError(err)
	}
	if len(row.NodeKey) != len(backup.NodeKey{}) {
		return backup.NodeKey{}, time.Time{}, fmt.Errorf("session row has a %d-byte node key", len(row.NodeKey))
	}
	return backup.NodeKey(row.NodeKey), row.ExpiresAt, nil
}

// channelIDBytes keeps the "no channel id" value a non-NULL empty bytea.
func channelIDBytes(id []byte) []byte {
	if id == nil {
		return []byte{}
	}
	return id
}

// refusalOfState is the refusal each SQLSTATE of the SQL functions
// (db/functions) stands for: one SQLSTATE per refusal.
func refusalOfState(code string) backup.Refusal {
	switch code {
	case "LBL01":
		return backup.RefusedRateAddress
	case "LBL02":
		return backup.RefusedRateNode
	case "LBL03":
		return backup.RefusedNewNodes
	case "LBQ01":
		return backup.RefusedQuotaBytes
	case "LBQ02":
		return backup.RefusedQuotaObjects
	case "LBQ03":
		return backup.RefusedQuotaUploads
	case "LBR01":
		return backup.RefusedReplay
	}
	return ""
}

// interpretError maps driver errors to the domain's, once: pgx.ErrNoRows
// never leaves this package, and an unreachable database is "unavailable"
// rather than an internal error.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return backup.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return &wrapped{backup.Errorf(backup.ECONFLICT, "conflicting write, try again"), err}
		case "LBV01": // raised by vss_put: an item's version did not match
			return &wrapped{backup.Errorf(backup.ECONFLICT, "Transaction could not be completed due to a possible conflict"), err}
		case "LBR01": // raised by persist_object
			e := backup.Errorf(backup.ECONFLICT, "this node uploaded these exact bytes before: a replayed upload is refused")
			e.Refusal = backup.RefusedReplay
			return &wrapped{e, err}
		case "LBL01", "LBL02", "LBL03": // raised by rate_take
			var d struct {
				RetryAfterMs int64 `json:"retry_after_ms"`
			}
			_ = json.Unmarshal([]byte(pgErr.Detail), &d)
			secs := max((d.RetryAfterMs+999)/1000, 1)
			return &wrapped{backup.RateLimited(refusalOfState(pgErr.Code), time.Duration(secs)*time.Second), err}
		case "LBQ01", "LBQ02", "LBQ03": // raised by persist_object
			details := map[string]any{}
			_ = json.Unmarshal([]byte(pgErr.Detail), &details)
			return &wrapped{&backup.Error{Code: backup.EQUOTA, Message: "quota exceeded", Details: details, Refusal: refusalOfState(pgErr.Code)}, err}
		case "57P01", "57P02", "57P03", "53300": // shutdown, crash, cannot connect now, too many connections
			return &wrapped{unavailable(), err}
		case "25006": // read_only_sql_transaction: a demoted primary or a standby; the pool drops the connection (readOnlySession)
			return &wrapped{unavailable(), err}
		}
		if strings.HasPrefix(pgErr.Code, "08") { // connection_exception
			return &wrapped{unavailable(), err}
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	// A connection cut mid-query (PostgreSQL crashed or was killed) ends in
	// an EOF: the database is away, not the server broken.
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
		return &wrapped{unavailable(), err}
	}
	return err
}

// unavailableRetryAfter is what a client is told to wait when the database
// is away: about the time pg_auto_failover takes to promote a standby, so a
// client that honours it is not turned away twice by the same outage.
const unavailableRetryAfter = 5 * time.Second

// unavailable is the client's error while no writable primary answers:
// 503 with Retry-After, never 500.
func unavailable() *backup.Error {
	return &backup.Error{Code: backup.EUNAVAILABLE, Message: "storage unavailable, try again", RetryAfter: unavailableRetryAfter}
}

func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// wrapped carries a client-facing error and keeps the driver's cause for the
// log.
type wrapped struct {
	client *backup.Error
	cause  error
}

func (w *wrapped) Error() string   { return w.client.Message + ": " + w.cause.Error() }
func (w *wrapped) Unwrap() []error { return []error{w.client, w.cause} }

// refusalKind names a refusal of a node's own request (a quota, or the
// node's or new nodes' rate limit) as node_refusals counts it; "" for any
// other outcome.
func refusalKind(err error) string {
	switch r := backup.RefusalOf(interpretError(err)); r {
	case backup.RefusedQuotaBytes, backup.RefusedQuotaObjects, backup.RefusedQuotaUploads, backup.RefusedRateNode:
		return string(r)
	case backup.RefusedNewNodes:
		return "new_nodes_per_address"
	}
	return ""
}

// recordIfRefused records err when it refuses a node's own request. Every
// refusal of a node is recorded here, in the store, and nowhere else.
func (s *Store) recordIfRefused(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, err error, now time.Time) {
	if kind := refusalKind(err); kind != "" {
		s.recordRefusal(ctx, tenant, node, kind, now)
	}
}

// recordRefusal counts a refusal; a failure to count must not change the
// answer to the request, so it is only logged by the caller's metrics.
func (s *Store) recordRefusal(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, kind string, now time.Time) {
	day := now.UTC().Truncate(24 * time.Hour)
	_ = s.q.NodeRefusalRecord(ctx, dbsqlc.NodeRefusalRecordParams{TenantID: int64(tenant), NodeKey: node[:], Day: day, Now: now, Kind: kind})
}

func clampInt32(n int64) int32 {
	return int32(min(max(n, 0), math.MaxInt32))
}
