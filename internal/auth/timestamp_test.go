package auth

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
)

func TestParseTimestamp(t *testing.T) {
	t.Parallel()
	good := []struct {
		raw  string
		text string
		want time.Time
	}{
		// Android and Node: a JSON number of milliseconds.
		{`1764169200123`, "1764169200123", time.UnixMilli(1764169200123)},
		// iOS: a JSON string of seconds with a fraction.
		{`"1764169200.123456"`, "1764169200.123456", time.Unix(1764169200, 123456000)},
		{`"1764169200"`, "1764169200", time.Unix(1764169200, 0)},
		{` 1700000000000 `, "1700000000000", time.UnixMilli(1700000000000)},
	}
	for _, tc := range good {
		ts, err := ParseTimestamp(json.RawMessage(tc.raw))
		require.NoError(t, err, tc.raw)
		require.Equal(t, tc.text, ts.Text, "the signed text is the client's own")
		require.True(t, tc.want.Equal(ts.Time), "%s: got %v", tc.raw, ts.Time)
	}
	for _, bad := range []string{``, `null`, `1.764169200123e12`, `-1`, `1764169200123.5`, `"abc"`, `"1764169200123,5"`,
		`"1.7e9"`, `true`, `{}`, `[]`, `"`, `1234567890123456789012`, `"NaN"`, `"١٢٣"`} {
		_, err := ParseTimestamp(json.RawMessage(bad))
		require.Error(t, err, bad)
		require.Equal(t, backup.EINVALID, backup.ErrorCode(err), bad)
	}
}
