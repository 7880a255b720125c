package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"ldkbackup/internal/postgres"
)

// replicationCheckInterval is how often a server on a formation says again
// that its acknowledged writes are not on a second machine.
const replicationCheckInterval = time.Minute

// watchReplication reports, at start-up and every minute, what an
// acknowledgement guarantees: whether the primary waits for a synchronous
// standby, and (with MONITOR_URL) whether the pg_auto_failover monitor that
// would promote it answers. A log line rather than /readyz: a formation
// without its standby still takes writes by design (the primary commits
// alone), and taking every replica out of the load balancer for it would
// turn a degraded formation into an outage.
func (a *App) watchReplication(ctx context.Context) {
	t := time.NewTicker(replicationCheckInterval)
	defer t.Stop()
	wasProblem := ""
	for first := true; ; first = false {
		problem, sync, detail := a.replicationProblem(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case problem != "":
			a.logger.Warn("database formation: "+problem, "replication", detail)
		case !sync && first:
			// One PostgreSQL, as configured: said once, not every minute.
			a.logger.Info("database replication: none; an acknowledged write is on this PostgreSQL alone (set MONITOR_URL on a pg_auto_failover formation to have it checked)", "replication", detail)
		case sync && (first || wasProblem != ""):
			a.logger.Info("database replication: a synchronous standby has every acknowledged write", "replication", detail)
		}
		wasProblem = problem
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// replicationProblem is "" when nothing is wrong for the configured
// topology; sync says whether a commit waits for a standby, and detail
// describes what was seen.
func (a *App) replicationProblem(ctx context.Context) (problem string, sync bool, detail string) {
	rep, err := a.store.Replication(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.metrics.Replication(false, 0, 0, false)
		}
		return "cannot read the primary's replication state", false, err.Error()
	}
	sync = rep.Synchronous()
	a.metrics.Replication(true, rep.Standbys, rep.SyncStandbys, sync)
	detail = rep.String()
	var problems []string
	switch {
	case rep.SyncStandbys < 0:
		problems = append(problems, "cannot tell whether a standby is synchronous")
	case rep.SynchronousStandbyNames != "" && rep.SyncStandbys == 0:
		// Plain PostgreSQL waits for a listed standby forever; under
		// pg_auto_failover this is the moment before the monitor empties
		// the list.
		problems = append(problems, "synchronous_standby_names is set but no standby streams synchronously: commits wait")
	case a.cfg.MonitorURL != "" && !rep.Synchronous():
		problems = append(problems, "no synchronous standby: acknowledged writes are on the primary alone until the standby is back")
	}
	if a.cfg.MonitorURL != "" {
		nodes, err := postgres.MonitorState(ctx, a.cfg.MonitorURL)
		unhealthy := 0
		for _, n := range nodes {
			if !n.Healthy {
				unhealthy++
			}
		}
		if ctx.Err() == nil {
			a.metrics.Formation(err == nil, len(nodes), unhealthy)
		}
		if err != nil {
			problems = append(problems, "the pg_auto_failover monitor does not answer: nothing will promote the standby if the primary is lost")
			detail += "; monitor: " + err.Error()
		} else {
			states := make([]string, len(nodes))
			for i, n := range nodes {
				states[i] = fmt.Sprintf("%s=%s/%s healthy=%t", n.Name, n.Reported, n.Assigned, n.Healthy)
			}
			detail += "; monitor: " + strings.Join(states, " ")
		}
	}
	return strings.Join(problems, "; "), sync, detail
}
