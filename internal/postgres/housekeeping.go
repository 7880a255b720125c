package postgres

import (
	"context"
	"time"

	"ldkbackup/internal/dbsqlc"
)

// Swept counts what one housekeeping run removed.
type Swept struct {
	Ran          bool // false: another replica held the lock
	Challenges   int64
	Sessions     int64
	RateCounters int64
	Pruned       int64 // version payloads dropped by retention
}

// Housekeep removes expired challenges and sessions and the counters of rate
// windows that have ended, in one transaction that only one replica at a
// time can run. With retain > 0 it also drops version payloads beyond
// retention, a bounded batch at a time.
func (s *Store) Housekeep(ctx context.Context, now time.Time, retain int) (Swept, error) {
	var sw Swept
	err := s.WithTx(ctx, func(q *dbsqlc.Queries) error {
		locked, err := q.HousekeepingLock(ctx)
		if err != nil || !locked {
			return err
		}
		sw.Ran = true
		if sw.Challenges, err = q.ChallengeDeleteExpired(ctx, now); err != nil {
			return err
		}
		if sw.Sessions, err = q.SessionDeleteExpired(ctx, now); err != nil {
			return err
		}
		// The longest window is an hour; a counter older than that is dead.
		if sw.RateCounters, err = q.RateSweep(ctx, now.Add(-time.Hour)); err != nil {
			return err
		}
		if retain > 0 {
			sw.Pruned, err = q.VersionsPruneRetention(ctx, dbsqlc.VersionsPruneRetentionParams{Retain: int64(retain), Now: now, MaxRows: 10000})
		}
		return err
	})
	return sw, err
}
