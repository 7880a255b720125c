package client

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// TimestampStyle selects which app's timestamp format the client imitates.
type TimestampStyle int

const (
	// AndroidTimestamps: milliseconds since the epoch as a JSON number
	// (Kotlin's System.currentTimeMillis(); the Node test client does the same).
	AndroidTimestamps TimestampStyle = iota
	// IOSTimestamps: seconds with a fraction as a JSON string, Swift's
	// String(Date().timeIntervalSince1970), e.g. "1764169200.123456".
	IOSTimestamps
)

// String names the style for logs and test names.
func (s TimestampStyle) String() string {
	switch s {
	case AndroidTimestamps:
		return "android"
	case IOSTimestamps:
		return "ios"
	default:
		return "TimestampStyle(" + strconv.Itoa(int(s)) + ")"
	}
}

// cfAbsoluteTimeIntervalSince1970 is the offset of Foundation's reference
// date (2001-01-01) from the Unix epoch.
const cfAbsoluteTimeIntervalSince1970 = 978307200

// Format renders t as the app of this style writes it, both in the signed
// auth/challenge timestamp and in the persist Challenge preimage.
func (s TimestampStyle) Format(t time.Time) string {
	if s == IOSTimestamps {
		return swiftSeconds(t)
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// swiftSeconds reproduces String(Date().timeIntervalSince1970) on an iPhone.
// Foundation reads the clock in microseconds as seconds since 2001 (a Double),
// and timeIntervalSince1970 adds the 2001 offset back; the two roundings make
// the text end in 6 or 7 fractional digits, as real devices send. Swift prints
// the shortest text that round-trips, always with a fraction ("….0").
func swiftSeconds(t time.Time) string {
	usec := t.Nanosecond() / 1000
	// The explicit float64 conversions forbid fused multiply-add, which would
	// round differently from the device on some architectures.
	ref := float64(t.Unix()-cfAbsoluteTimeIntervalSince1970) + float64(1e-6*float64(usec))
	secs := float64(ref + cfAbsoluteTimeIntervalSince1970)
	out := strconv.FormatFloat(secs, 'f', -1, 64)
	if !strings.Contains(out, ".") {
		out += ".0"
	}
	return out
}

// PersistChallenge is the Challenge header: hex SHA-256 of the public key hex
// followed by the current time in the app's format.
func PersistChallenge(pubHex string, style TimestampStyle, now time.Time) string {
	sum := sha256.Sum256([]byte(pubHex + style.Format(now)))
	return hex.EncodeToString(sum[:])
}
