package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/dbsqlc"
	"ldkbackup/internal/vss"
	"ldkbackup/internal/vsspb"
)

// PutVSS applies a VSS write in one round trip (vss_put); a refusal of the
// user's own request is recorded.
func (s *Store) PutVSS(ctx context.Context, u vss.User, w vss.Write, now time.Time, limits backup.WriteLimits) (time.Duration, error) {
	putKeys, putValues, putVersions := splitItems(w.Puts, true)
	delKeys, _, delVersions := splitItems(w.Deletes, false)
	row, err := s.q.VSSPut(ctx, dbsqlc.VSSPutParams{
		TenantID:       int64(u.Tenant.ID),
		UserToken:      u.Token,
		StoreID:        w.StoreID,
		PutKeys:        putKeys,
		PutValues:      putValues,
		PutVersions:    putVersions,
		GlobalVersion:  w.GlobalVersion,
		DeleteKeys:     delKeys,
		DeleteVersions: delVersions,
		MissingOk:      w.MissingOK,
		Now:            now,
		RateKey:        limits.NodeRateKey,
		RateLimit:      clampInt32(limits.NodePerMinute),
		PaceMaxMs:      limits.PaceMaxWait.Milliseconds(),
		NewUserKey:     limits.NewNodeKey,
		NewUserLimit:   clampInt32(limits.NewNodesPerHour),
		QuotaBytes:     limits.QuotaBytes,
		QuotaObjects:   clampInt32(limits.QuotaObjects),
	})
	if err != nil {
		s.recordVSSRefusal(ctx, u, err, now)
		return 0, interpretError(err)
	}
	return time.Duration(row.WaitMs) * time.Millisecond, nil
}

// splitItems turns items into the arrays vss_put takes. A value is never
// NULL: protobuf decodes an empty one as nil, which pgx would send as NULL.
func splitItems(items []*vsspb.KeyValue, values bool) (keys []string, vals [][]byte, versions []int64) {
	keys = make([]string, len(items))
	versions = make([]int64, len(items))
	if values {
		vals = make([][]byte, len(items))
	}
	for i, kv := range items {
		keys[i], versions[i] = kv.GetKey(), kv.GetVersion()
		if values {
			vals[i] = kv.GetValue()
			if vals[i] == nil {
				vals[i] = []byte{}
			}
		}
	}
	return keys, vals, versions
}

// OpenVSSValue is a getObject's first read (VSSObjectOpen), with the value's
// first len(buf) bytes read into buf. It counts against the user's rate
// limit in the same round trip; a refusal is recorded.
func (s *Store) OpenVSSValue(ctx context.Context, u vss.User, storeID, key string, now time.Time, limit backup.ReadLimit, buf []byte) (vss.OpenedValue, error) {
	row, err := dbsqlc.New(intoBuffer{s.pool, buf}).VSSObjectOpen(ctx, dbsqlc.VSSObjectOpenParams{
		RateKey:       limit.NodeRateKey,
		Now:           now,
		WindowSeconds: backup.MinuteWindow,
		RateLimit:     clampInt32(limit.NodePerMinute),
		ChunkBytes:    int32(len(buf)),
		TenantID:      int64(u.Tenant.ID),
		UserToken:     u.Token,
		StoreID:       storeID,
		Key:           key,
	})
	if err != nil {
		s.recordVSSRefusal(ctx, u, err, now)
		return vss.OpenedValue{}, interpretError(err)
	}
	if !row.Found {
		return vss.OpenedValue{}, backup.ErrNotFound
	}
	return vss.OpenedValue{
		ID:      vss.ValueID{UserID: row.UserID, StoreID: storeID, Key: key, Seq: row.Seq, Revision: row.Revision},
		Version: row.Version,
		Size:    row.Size,
		Head:    row.Head,
	}, nil
}

// ReadVSSChunk reads len(buf) bytes of a value from byte off into buf, in a
// query of its own, only while the key still holds the value first read.
func (s *Store) ReadVSSChunk(ctx context.Context, id vss.ValueID, off int64, buf []byte) ([]byte, error) {
	chunk, err := dbsqlc.New(intoBuffer{s.pool, buf}).VSSObjectChunk(ctx, dbsqlc.VSSObjectChunkParams{
		Start: int32(off + 1), Length: int32(len(buf)),
		UserID: id.UserID, StoreID: id.StoreID, Key: id.Key, Seq: id.Seq, Revision: id.Revision,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, vss.ErrValueChanged
	}
	return chunk, interpretError(err)
}

// ListVSSKeys reads one page of a store's keys and its global version in one
// statement (VSSKeyList), counted against the user's rate limit.
func (s *Store) ListVSSKeys(ctx context.Context, u vss.User, q vss.ListQuery, now time.Time, limit backup.ReadLimit) (vss.Page, error) {
	rows, err := s.q.VSSKeyList(ctx, dbsqlc.VSSKeyListParams{
		RateKey:       limit.NodeRateKey,
		Now:           now,
		WindowSeconds: backup.MinuteWindow,
		RateLimit:     clampInt32(limit.NodePerMinute),
		TenantID:      int64(u.Tenant.ID),
		UserToken:     u.Token,
		StoreID:       q.StoreID,
		Paged:         q.Paged,
		Before:        q.Before,
		Prefix:        q.Prefix,
		MaxRows:       int32(q.Rows),
	})
	if err != nil {
		s.recordVSSRefusal(ctx, u, err, now)
		return vss.Page{}, interpretError(err)
	}
	var p vss.Page
	for _, r := range rows {
		p.GlobalVersion = r.GlobalVersion
		if r.Found {
			p.Keys = append(p.Keys, vss.KeyVersion{Key: r.Key, Version: r.Version, Seq: r.Seq})
		}
	}
	return p, nil
}

// recordVSSRefusal records a refusal of a VSS user's own request (a quota,
// its rate limit, new users of its address), as recordIfRefused does for a
// node.
func (s *Store) recordVSSRefusal(ctx context.Context, u vss.User, err error, now time.Time) {
	kind := refusalKind(err)
	if kind == "" {
		return
	}
	day := now.UTC().Truncate(24 * time.Hour)
	_ = s.q.VSSRefusalRecord(ctx, dbsqlc.VSSRefusalRecordParams{TenantID: int64(u.Tenant.ID), UserToken: u.Token, Day: day, Now: now, Kind: kind})
}

// VSSUserReport reads what an operator sees of a user: its usage, own
// quotas, stores, its first maxKeys keys (of storeID only, when not nil)
// and its refusals since since.
func (s *Store) VSSUserReport(ctx context.Context, u vss.User, storeID *string, maxKeys int, since time.Time) (vss.UserReport, error) {
	var r vss.UserReport
	q, err := s.q.VSSQuotaGet(ctx, dbsqlc.VSSQuotaGetParams{TenantID: int64(u.Tenant.ID), UserToken: u.Token})
	switch {
	case err == nil:
		r.OwnQuotaBytes = q.QuotaBytes
		if q.QuotaObjects != nil {
			n := int64(*q.QuotaObjects)
			r.OwnQuotaObjects = &n
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return r, interpretError(err)
	}
	refusals, err := s.q.VSSRefusalsSince(ctx, dbsqlc.VSSRefusalsSinceParams{TenantID: int64(u.Tenant.ID), UserToken: u.Token, Since: since})
	if err != nil {
		return r, interpretError(err)
	}
	for _, rf := range refusals {
		r.Refusals = append(r.Refusals, vss.Refusal{Kind: rf.Kind, Count: rf.Count, LastAt: rf.LastAt})
	}
	usage, err := s.q.VSSUserGet(ctx, dbsqlc.VSSUserGetParams{TenantID: int64(u.Tenant.ID), UserToken: u.Token})
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return r, interpretError(err)
	}
	r.Exists, r.Bytes, r.Objects, r.FirstSeen, r.LastWrite = true, usage.Bytes, int64(usage.Objects), usage.FirstSeen, usage.LastWrite
	stores, err := s.q.VSSUserStores(ctx, usage.ID)
	if err != nil {
		return r, interpretError(err)
	}
	for _, st := range stores {
		r.Stores = append(r.Stores, vss.StoreUsage{StoreID: st.StoreID, Keys: st.Keys, Bytes: st.Bytes, LastWrite: st.LastWrite})
	}
	keys, err := s.q.VSSUserKeys(ctx, dbsqlc.VSSUserKeysParams{UserID: usage.ID, OneStore: storeID != nil, StoreID: deref(storeID), MaxRows: int32(maxKeys)})
	if err != nil {
		return r, interpretError(err)
	}
	for _, k := range keys {
		r.Keys = append(r.Keys, vss.StoredKey{StoreID: k.StoreID, Key: k.Key, Version: k.Version, Size: k.Size, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt})
	}
	return r, nil
}

// DeleteVSSUser deletes a user's keys (of storeID only, when not nil),
// lowers its usage by what went, and records the deletion in the audit
// log, in one transaction that holds the user's lock, so no write of the
// user interleaves with it.
func (s *Store) DeleteVSSUser(ctx context.Context, u vss.User, storeID *string, now time.Time) (vss.Deletion, error) {
	var d vss.Deletion
	err := s.WithTx(ctx, func(q *dbsqlc.Queries) error {
		id, err := q.VSSUserLock(ctx, dbsqlc.VSSUserLockParams{TenantID: int64(u.Tenant.ID), UserToken: u.Token})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // never wrote: nothing to delete, nothing to record
		}
		if err != nil {
			return err
		}
		gone, err := q.VSSUserDeleteObjects(ctx, dbsqlc.VSSUserDeleteObjectsParams{UserID: id, OneStore: storeID != nil, StoreID: deref(storeID)})
		if err != nil {
			return err
		}
		d = vss.Deletion{Objects: gone.Objects, Bytes: gone.Bytes}
		if d.Objects == 0 {
			return nil
		}
		detail := map[string]any{"objects": d.Objects, "bytes": d.Bytes}
		if storeID != nil {
			detail["store_id"] = *storeID
		}
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		return q.VSSAuditInsert(ctx, dbsqlc.VSSAuditInsertParams{TenantID: int64(u.Tenant.ID), UserToken: u.Token, Action: "vss_user_deleted", Detail: b, Now: now})
	})
	return d, err
}

// SetVSSQuota sets a user's own quotas (nil: the tenant's or the server's).
func (s *Store) SetVSSQuota(ctx context.Context, u vss.User, bytes *int64, objects *int32, now time.Time) error {
	return interpretError(s.q.VSSQuotaSet(ctx, dbsqlc.VSSQuotaSetParams{TenantID: int64(u.Tenant.ID), UserToken: u.Token, QuotaBytes: bytes, QuotaObjects: objects, Now: now}))
}

// ClearVSSQuota removes a user's own quotas.
func (s *Store) ClearVSSQuota(ctx context.Context, u vss.User) error {
	return interpretError(s.q.VSSQuotaClear(ctx, dbsqlc.VSSQuotaClearParams{TenantID: int64(u.Tenant.ID), UserToken: u.Token}))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// VSSAuthMarks is a tenant's vssauth.ReplayGuard: the newest signature time
// each key has used, in PostgreSQL so every replica shares it.
type VSSAuthMarks struct {
	s      *Store
	tenant backup.TenantID
}

// VSSAuthMarks returns tenant's replay guard.
func (s *Store) VSSAuthMarks(tenant backup.TenantID) VSSAuthMarks {
	return VSSAuthMarks{s: s, tenant: tenant}
}

// Advance raises userToken's mark to mark unless the recorded one is later
// than ceiling, in one round trip (db/functions/vss_auth_advance.sql).
func (m VSSAuthMarks) Advance(ctx context.Context, userToken string, ceiling, mark time.Time) (bool, error) {
	admitted, err := m.s.q.VSSAuthMarkAdvance(ctx, dbsqlc.VSSAuthMarkAdvanceParams{TenantID: int64(m.tenant), UserToken: userToken, Mark: mark, Ceiling: ceiling})
	if err != nil {
		return false, interpretError(err)
	}
	return admitted, nil
}
