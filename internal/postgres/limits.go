package postgres

import (
	"context"
	"time"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/dbsqlc"
)

// RateHit counts one request of key in its window and returns the count
// (see rate_count).
func (s *Store) RateHit(ctx context.Context, key string, now time.Time, windowSeconds, limit int64) (int64, error) {
	n, err := s.q.RateHit(ctx, dbsqlc.RateHitParams{Key: key, Now: now, WindowSeconds: int32(windowSeconds), Max: clampInt32(limit)})
	return int64(n), interpretError(err)
}

// RatePeek returns how much of key's allowance is taken at now, without
// counting, and how long until one more request would pass (see rate_peek).
func (s *Store) RatePeek(ctx context.Context, key string, now time.Time, windowSeconds, limit int64) (int64, time.Duration, error) {
	r, err := s.q.RatePeek(ctx, dbsqlc.RatePeekParams{Key: key, Now: now, WindowSeconds: int32(windowSeconds), Max: clampInt32(limit)})
	return int64(r.Used), time.Duration(r.RetryMs) * time.Millisecond, interpretError(err)
}

// HitNode counts a read that proved node's key against its allowance of
// limit a minute; a refusal is recorded as every refusal of a node is.
func (s *Store) HitNode(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, now time.Time, limit int64) error {
	_, err := s.RateHit(ctx, backup.RateKeyNode(tenant, node), now, backup.MinuteWindow, limit)
	s.recordIfRefused(ctx, tenant, node, err, now)
	return err
}

// NodeReport is what an operator sees of a node.
type NodeReport struct {
	Usage     *dbsqlc.NodeUsageGetRow // nil: the node never stored anything
	Quota     *dbsqlc.NodeQuotaGetRow // nil: no per-node quota
	Refusals  []dbsqlc.NodeRefusalsSinceRow
	Networks  map[string]int64 // objects per network
	LastWrite *time.Time
}

// NodeReport gathers a node's usage, quota override and refusals since.
func (s *Store) NodeReport(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, since time.Time) (NodeReport, error) {
	var r NodeReport
	usage, err := s.q.NodeUsageGet(ctx, dbsqlc.NodeUsageGetParams{TenantID: int64(tenant), NodeKey: node[:]})
	if err = interpretError(err); err == nil {
		r.Usage = &usage
	} else if err != backup.ErrNotFound {
		return r, err
	}
	quota, err := s.q.NodeQuotaGet(ctx, dbsqlc.NodeQuotaGetParams{TenantID: int64(tenant), NodeKey: node[:]})
	if err = interpretError(err); err == nil {
		r.Quota = &quota
	} else if err != backup.ErrNotFound {
		return r, err
	}
	if r.Refusals, err = s.q.NodeRefusalsSince(ctx, dbsqlc.NodeRefusalsSinceParams{TenantID: int64(tenant), NodeKey: node[:], Since: since}); err != nil {
		return r, interpretError(err)
	}
	nets, err := s.q.ObjectCountByNetwork(ctx, dbsqlc.ObjectCountByNetworkParams{TenantID: int64(tenant), NodeKey: node[:]})
	if err != nil {
		return r, interpretError(err)
	}
	r.Networks = map[string]int64{}
	for _, n := range nets {
		r.Networks[n.Network] = n.Objects
		if r.LastWrite == nil || n.LastWrite.After(*r.LastWrite) {
			t := n.LastWrite
			r.LastWrite = &t
		}
	}
	return r, nil
}

// SetNodeQuota sets (or, with all nil, clears) a node's own quotas.
func (s *Store) SetNodeQuota(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, bytes *int64, objects *int32, uploads *int64, now time.Time) error {
	if bytes == nil && objects == nil && uploads == nil {
		return interpretError(s.q.NodeQuotaClear(ctx, dbsqlc.NodeQuotaClearParams{TenantID: int64(tenant), NodeKey: node[:]}))
	}
	return interpretError(s.q.NodeQuotaSet(ctx, dbsqlc.NodeQuotaSetParams{
		TenantID: int64(tenant), NodeKey: node[:], QuotaBytes: bytes, QuotaObjects: objects, QuotaUploads: uploads, Now: now,
	}))
}
