package auth

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"ldkbackup/internal/backup"
)

var (
	// Android and Node send Date.now()/currentTimeMillis() as a JSON number.
	millisNumber = regexp.MustCompile(`^[0-9]{1,15}$`)
	// iOS sends String(Date().timeIntervalSince1970): seconds with a fraction.
	secondsString = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,9})?$`)
)

// Timestamp is the signed timestamp of a challenge request.
type Timestamp struct {
	// Text is exactly what the client signed: the digits of a JSON number, or
	// the content of a JSON string.
	Text string
	Time time.Time
}

// ParseTimestamp reads the timestamp field from its raw JSON text, never from
// a parsed float, so the signed payload is the client's own text.
func ParseTimestamp(raw json.RawMessage) (Timestamp, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return Timestamp{}, backup.Errorf(backup.EINVALID, "missing timestamp")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || !secondsString.MatchString(s) {
			return Timestamp{}, backup.Errorf(backup.EINVALID, "timestamp string must be seconds since the epoch, e.g. \"1764169200.123456\"")
		}
		return Timestamp{Text: s, Time: parseSeconds(s)}, nil
	}
	text := string(raw)
	if !millisNumber.MatchString(text) {
		return Timestamp{}, backup.Errorf(backup.EINVALID, "timestamp number must be whole milliseconds since the epoch")
	}
	ms, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return Timestamp{}, backup.Errorf(backup.EINVALID, "timestamp number must be whole milliseconds since the epoch")
	}
	return Timestamp{Text: text, Time: time.UnixMilli(ms)}, nil
}

// parseSeconds converts a string the secondsString pattern accepted.
func parseSeconds(s string) time.Time {
	whole, frac, _ := strings.Cut(s, ".")
	sec, _ := strconv.ParseInt(whole, 10, 64)
	nanos := int64(0)
	if frac != "" {
		frac += strings.Repeat("0", 9-len(frac))
		nanos, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(sec, nanos)
}
