package postgres

import (
	"context"
	"time"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/dbsqlc"
)

// Swept counts what one housekeeping run removed.
type Swept struct {
	Ran          bool // false: another replica held the lock
	Challenges   int64
	Sessions     int64
	RateCounters int64
	Pruned       int64 // versions deleted by retention
	Forgotten    int64 // uploads older than the upload history
	VSSMarks     int64 // VSS replay guard marks older than the signature window
}

// Sweep says what a housekeeping run does beyond expired login state and
// rested rate counters; zero values skip a step.
type Sweep struct {
	// Retain > 0 deletes versions beyond the newest Retain of each object
	// (those a streaming retrieve pinned, or after RETAIN_VERSIONS was
	// lowered), a bounded batch at a time.
	Retain int
	// UploadHistoryDays > 0 forgets uploads older than that many days.
	UploadHistoryDays int
	// VSSSignatureWindow > 0 forgets the VSS replay guard's marks older
	// than it: they can refuse nothing the window admits.
	VSSSignatureWindow time.Duration
}

// sweepBatch bounds each step of a run, so one run holds its locks briefly;
// what is left is swept by the next.
const sweepBatch = 10000

// Housekeep removes expired challenges and sessions and the counters of
// rested rate keys, and what sw asks for, in one transaction that only one
// replica at a time can run.
func (s *Store) Housekeep(ctx context.Context, now time.Time, sw Sweep) (Swept, error) {
	var out Swept
	err := s.WithTx(ctx, func(q *dbsqlc.Queries) error {
		locked, err := q.HousekeepingLock(ctx)
		if err != nil || !locked {
			return err
		}
		out.Ran = true
		if out.Challenges, err = q.ChallengeDeleteExpired(ctx, now); err != nil {
			return err
		}
		if out.Sessions, err = q.SessionDeleteExpired(ctx, now); err != nil {
			return err
		}
		if out.RateCounters, err = q.RateSweep(ctx, now); err != nil {
			return err
		}
		if sw.Retain > 0 {
			if out.Pruned, err = q.VersionsPruneRetention(ctx, dbsqlc.VersionsPruneRetentionParams{Retain: int64(sw.Retain), Now: now, MaxRows: sweepBatch}); err != nil {
				return err
			}
		}
		if sw.UploadHistoryDays > 0 {
			if out.Forgotten, err = q.UploadsForget(ctx, dbsqlc.UploadsForgetParams{BeforeDay: utcDay(now) - int32(sw.UploadHistoryDays), MaxRows: sweepBatch}); err != nil {
				return err
			}
		}
		if sw.VSSSignatureWindow > 0 {
			if out.VSSMarks, err = q.VSSAuthMarksSweep(ctx, dbsqlc.VSSAuthMarksSweepParams{Before: now.Add(-sw.VSSSignatureWindow), MaxRows: sweepBatch}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// utcDay is now's UTC date as days since 1970, as upload_hashes.day.
func utcDay(now time.Time) int32 {
	return int32(now.UTC().Unix() / 86400)
}

// UsageDrift is a node whose recorded usage differs from what it stores.
type UsageDrift struct {
	Tenant                                          backup.TenantID
	Node                                            backup.NodeKey
	RecordedBytes, RecordedObjects, RecordedUploads int64
	StoredBytes, StoredObjects, StoredUploads       int64
}

// CheckUsage compares the recorded usage of nodes with what they store (one
// node, or with a zero node every node of tenant, or with tenant 0 every
// node), and with repair adds each difference to the recorded figures.
func (s *Store) CheckUsage(ctx context.Context, tenant backup.TenantID, node *backup.NodeKey, repair bool) ([]UsageDrift, error) {
	nodeKey := []byte{}
	if node != nil {
		nodeKey = node[:]
	}
	var out []UsageDrift
	err := s.WithTx(ctx, func(q *dbsqlc.Queries) error {
		if err := q.UsageCheckLock(ctx); err != nil {
			return err
		}
		rows, err := q.NodeUsageDrift(ctx, dbsqlc.NodeUsageDriftParams{TenantID: int64(tenant), NodeKey: nodeKey})
		if err != nil {
			return err
		}
		out = make([]UsageDrift, 0, len(rows))
		for _, r := range rows {
			d := UsageDrift{
				Tenant: backup.TenantID(r.TenantID), Node: backup.NodeKey(r.NodeKey),
				RecordedBytes: r.RecordedBytes, RecordedObjects: r.RecordedObjects, RecordedUploads: r.RecordedUploads,
				StoredBytes: r.StoredBytes, StoredObjects: r.StoredObjects, StoredUploads: r.StoredUploads,
			}
			out = append(out, d)
			if !repair {
				continue
			}
			if err := q.NodeUsageAdjust(ctx, dbsqlc.NodeUsageAdjustParams{
				TenantID: r.TenantID, NodeKey: r.NodeKey,
				Bytes: d.StoredBytes - d.RecordedBytes, Objects: int32(d.StoredObjects - d.RecordedObjects), Uploads: d.StoredUploads - d.RecordedUploads,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// VSSUsageDrift is a VSS user whose recorded usage differs from what it
// stores.
type VSSUsageDrift struct {
	Tenant                         backup.TenantID
	UserToken                      string
	RecordedBytes, RecordedObjects int64
	StoredBytes, StoredObjects     int64
}

// CheckVSSUsage is CheckUsage for VSS users: one user (token not ""), or
// every user of tenant, or with tenant 0 every user.
func (s *Store) CheckVSSUsage(ctx context.Context, tenant backup.TenantID, token string, repair bool) ([]VSSUsageDrift, error) {
	var out []VSSUsageDrift
	err := s.WithTx(ctx, func(q *dbsqlc.Queries) error {
		if err := q.UsageCheckLock(ctx); err != nil {
			return err
		}
		rows, err := q.VSSUsageDrift(ctx, dbsqlc.VSSUsageDriftParams{TenantID: int64(tenant), UserToken: token})
		if err != nil {
			return err
		}
		out = make([]VSSUsageDrift, 0, len(rows))
		for _, r := range rows {
			d := VSSUsageDrift{Tenant: backup.TenantID(r.TenantID), UserToken: r.UserToken,
				RecordedBytes: r.RecordedBytes, RecordedObjects: r.RecordedObjects, StoredBytes: r.StoredBytes, StoredObjects: r.StoredObjects}
			out = append(out, d)
			if !repair {
				continue
			}
			if err := q.VSSUsageAdjust(ctx, dbsqlc.VSSUsageAdjustParams{TenantID: r.TenantID, UserToken: r.UserToken,
				Bytes: d.StoredBytes - d.RecordedBytes, Objects: int32(d.StoredObjects - d.RecordedObjects)}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
