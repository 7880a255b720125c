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
		}},
		{Drill: "memory", Pass: false, Seconds: 36, Error: "server died"},
	})
	require.Equal(t, `| drill | pass | seconds | headline |
| --- | --- | ---: | --- |
| pg-restart | yes | 44 | 6,430 acknowledged, 0 lost, 13,329 failed cleanly (13,320 × `+"`503`"+`, 9 × `+"`500`"+`), 0 unclean, 0 stale reads, slowest failure 198 ms; 16 of 16 wallets restored |
| memory | **no** | 36 | error: server died |
`, out.String())
}
