package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// headliner is a drill's figures that sum themselves up in one line.
type headliner interface{ headline() string }

// writeSummary prints the Markdown table docs/reliability-drills.md keeps
// under "Figures of the last run", so that the page shows one run's figures
// as the drills printed them.
func writeSummary(w io.Writer, results []result) {
	fmt.Fprintln(w, "| drill | pass | seconds | headline |")
	fmt.Fprintln(w, "| --- | --- | ---: | --- |")
	for _, r := range results {
		pass, line := "yes", ""
		if !r.Pass {
			pass = "**no**"
		}
		if h, ok := r.Figures.(headliner); ok {
			line = h.headline()
		}
		if r.Error != "" {
			line = strings.TrimPrefix(line+"; error: "+r.Error, "; ")
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s |\n", r.Drill, pass, r.Seconds, line)
	}
}

// thousands writes n as 12,345.
func thousands[T int | int64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// statuses writes counts by status as "12 × `503`, 3 × `500`", largest first.
func statuses(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s × `%s`", thousands(m[k]), k)
	}
	return strings.Join(parts, ", ")
}

func (f restartFigures) headline() string {
	return fmt.Sprintf("%s acknowledged, %d lost, %s failed cleanly (%s), %d unclean, %d stale reads, slowest failure %.0f ms; %d of %d wallets restored",
		thousands(f.Acknowledged), f.Lost, thousands(f.FailedCleanly), statuses(f.FailedStatuses), f.Unclean, f.StaleReads, f.MaxErrorMs, f.Restored, f.Wallets) + vssHeadline(f.VSS)
}

func (f killFigures) headline() string {
	midBody := 0
	for _, r := range f.Rounds {
		midBody += r.MidBody
	}
	return fmt.Sprintf("%d kills (%d uploads caught mid-body), %d acknowledged, %d lost, %d corrupt payloads, %d unacknowledged but committed whole",
		len(f.Rounds), midBody, f.Acknowledged, f.Lost, f.Integrity.CorruptPayloads, f.UnackedCommitted) + vssHeadline(f.VSS)
}

func (f replicaFigures) headline() string {
	exceeded := false
	for _, w := range f.Quota.Waves {
		exceeded = exceeded || w.UsageAfter > int64(f.Quota.QuotaBytes)
	}
	quota := "never exceeded"
	if exceeded {
		quota = "**exceeded**"
	}
	return fmt.Sprintf("%d duplicate migrations, tokens %s, challenges %s, address limit %d/%d, node limit %d/%d, quota %s",
		f.DuplicateMigrations, f.TokensAcross, f.ChallengesAcross, f.AddressLimit.Passed, f.AddressLimit.Sent,
		f.NodeLimit.Passed, f.NodeLimit.Sent, quota) + vssHeadline(f.VSS)
}

func (f slowFigures) headline() string {
	parts := []string{fmt.Sprintf("baseline p99 %.0f ms", f.Baseline.Latency.P99)}
	for _, p := range f.Phases {
		parts = append(parts, fmt.Sprintf("beside %s: %s of %s acknowledged, p99 %.0f ms",
			p.Name, thousands(p.Normal.Acked), thousands(p.Normal.Sent), p.Normal.Latency.P99))
	}
	return strings.Join(parts, "; ")
}

func (f memoryFigures) headline() string {
	var parts []string
	for _, w := range f.Waves {
		parts = append(parts, fmt.Sprintf("%d × %d MiB: peak RSS %.0f MiB, %d acknowledged, %d × `503`",
			w.Concurrent, f.BodyBytes>>20, w.PeakRSSMiB, w.Acked, w.Refused503))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf(" (bound %d MiB); %d corrupt", f.BoundBytes>>20, f.Integrity.CorruptPayloads)
}

func (f burstFigures) headline() string {
	return fmt.Sprintf("%d monitors at once, allowance %d/min: %d stored (%s), slowest %.1f s, %d objects stored, usage drift %d",
		f.Monitors, f.PerMinute, f.Acked, statuses(f.Statuses), f.SlowestSeconds, f.Integrity.Objects, f.Integrity.UsageDrift)
}

func (f failoverFigures) headline() string {
	promoted := make([]string, len(f.Events))
	for i, ev := range f.Events {
		promoted[i] = fmt.Sprintf("%.1f s", ev.PromotedMs/1000)
	}
	return fmt.Sprintf("%d events (new primary after %s), %s acknowledged, %d lost, answers %s; %d of %d wallets restored",
		len(f.Events), strings.Join(promoted, ", "), thousands(f.Acknowledged), f.Lost, statuses(f.Answers), f.Restored, f.Wallets) + vssHeadline(f.VSS)
}
