package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSummaryIsTheTableTheDocKeeps(t *testing.T) {
	t.Parallel()
	require.Equal(t, "7,693", thousands(7693))
	require.Equal(t, "1,048,576", thousands(int64(1048576)))
	require.Equal(t, "999", thousands(999))
	var out bytes.Buffer
	writeSummary(&out, []result{
		{Drill: "pg-restart", Pass: true, Seconds: 44.2, Figures: &restartFigures{
			Wallets: 16, Restored: 16, Acknowledged: 6430, FailedCleanly: 13329, MaxErrorMs: 198.4,
			FailedStatuses: map[string]int{"503": 13320, "500": 9},
			VSS:            &vssFigures{Acknowledged: 5210, Failed: map[string]int{"503": 900, "none": 3}},
		}},
		{Drill: "failover", Pass: true, Seconds: 177, Figures: &failoverFigures{
			Wallets: 8, Restored: 8, Acknowledged: 24196, Answers: map[string]int{"200": 24196, "503": 7641},
			Events: []failoverEvent{{PromotedMs: 50560.7}, {PromotedMs: 7007.2}},
			VSS:    &vssFigures{Acknowledged: 12, Failed: map[string]int{}},
		}},
		{Drill: "memory", Pass: false, Seconds: 36, Error: "server died"},
	})
	require.Equal(t, `| drill | pass | seconds | headline |
| --- | --- | ---: | --- |
| pg-restart | yes | 44 | 6,430 acknowledged, 0 lost, 13,329 failed cleanly (13,320 × `+"`503`"+`, 9 × `+"`500`"+`), 0 unclean, 0 stale reads, slowest failure 198 ms; 16 of 16 wallets restored; VSS: 5,210 puts acknowledged, 0 lost, 0 wrong versions, 903 failed (900 × `+"`503`"+`, 3 × `+"`none`"+`), 0 unclean, 0 stale reads |
| failover | yes | 177 | 2 events (new primary after 50.6 s, 7.0 s), 24,196 acknowledged, 0 lost, answers 24,196 × `+"`200`"+`, 7,641 × `+"`503`"+`; 8 of 8 wallets restored; VSS: 12 puts acknowledged, 0 lost, 0 wrong versions, 0 failed, 0 unclean, 0 stale reads |
| memory | **no** | 36 | error: server died |
`, out.String())
}
