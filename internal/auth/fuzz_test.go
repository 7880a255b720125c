package auth

import (
	"encoding/json"
	"testing"
)

// FuzzParseTimestamp: any JSON value is refused or parsed into the text the
// client signed, never a panic.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{`1764169200123`, `"1764169200.123456"`, `"1764169200.1234567"`, `1.5e12`, `null`, `"NaN"`, `-1`, `[]`, `{"a":1}`, `"\u0031"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ts, err := ParseTimestamp(json.RawMessage(raw))
		if err != nil {
			return
		}
		if ts.Text == "" || ts.Time.IsZero() {
			t.Fatalf("%q parsed to %+v", raw, ts)
		}
		for _, c := range ts.Text {
			if (c < '0' || c > '9') && c != '.' {
				t.Fatalf("%q: signed text %q has %q", raw, ts.Text, c)
			}
		}
	})
}
