package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replication is what the primary says about the standbys a commit waits
// for: whether an acknowledged write is on a second machine.
type Replication struct {
	SynchronousCommit       string // this session's: the pool sets on
	SynchronousStandbyNames string // pg_auto_failover sets ANY 1 (...) with a healthy standby, '' without
	Standbys                int    // standbys streaming from this primary
	// SyncStandbys stream as sync or quorum: a commit waits for them. -1
	// when this role may not read pg_stat_replication's sync_state (grant
	// it pg_monitor).
	SyncStandbys int
}

// Replication reads the primary's replication settings.
func (s *Store) Replication(ctx context.Context) (Replication, error) {
	var r Replication
	var known bool
	err := s.pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit'), current_setting('synchronous_standby_names'),
		count(*), count(*) FILTER (WHERE sync_state IN ('sync', 'quorum')), bool_and(sync_state IS NOT NULL) IS NOT false
		FROM pg_stat_replication`).Scan(&r.SynchronousCommit, &r.SynchronousStandbyNames, &r.Standbys, &r.SyncStandbys, &known)
	if err != nil {
		return r, interpretError(err)
	}
	if !known {
		r.SyncStandbys = -1
	}
	return r, nil
}

// Synchronous says whether a commit is acknowledged only once a standby
// has it.
func (r Replication) Synchronous() bool {
	return r.SynchronousStandbyNames != "" && r.SyncStandbys > 0 &&
		r.SynchronousCommit != "off" && r.SynchronousCommit != "local"
}

func (r Replication) String() string {
	sync := fmt.Sprint(r.SyncStandbys)
	if r.SyncStandbys < 0 {
		sync = "unknown (grant pg_monitor to read it)"
	}
	return fmt.Sprintf("synchronous_commit=%s synchronous_standby_names=%q standbys=%d synchronous_standbys=%s",
		r.SynchronousCommit, r.SynchronousStandbyNames, r.Standbys, sync)
}

// MonitorNode is one data node as a pg_auto_failover monitor has it.
type MonitorNode struct {
	Name, Reported, Assigned string
	Healthy                  bool
}

// MonitorState asks the pg_auto_failover monitor at monitorURL about the
// nodes of its default formation; an error when it cannot be reached.
func MonitorState(ctx context.Context, monitorURL string) ([]MonitorNode, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, monitorURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT nodename, current_group_state::text, assigned_group_state::text, health = 1
		FROM pgautofailover.current_state('default')`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (MonitorNode, error) {
		var n MonitorNode
		err := r.Scan(&n.Name, &n.Reported, &n.Assigned, &n.Healthy)
		return n, err
	})
}
