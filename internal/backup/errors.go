package backup

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. The api package maps each to one HTTP status; nothing else
// decides what a client sees.
const (
	EINVALID      = "invalid"      // malformed or missing input: 400
	EUNAUTHORIZED = "unauthorized" // a signature or token that does not check out: 401
	ENOTFOUND     = "not_found"    // 404
	EQUOTA        = "quota"        // a node's storage quota would be exceeded: 403
	ECONFLICT     = "conflict"     // 409
	ETOOLARGE     = "too_large"    // 413
	ERATELIMITED  = "rate_limited" // 429, with Retry-After
	EUNAVAILABLE  = "unavailable"  // the database cannot be reached now: 503
	EINTERNAL     = "internal"     // anything else: 500, details only in the log
)

// Error is an error meant for the client: Message is safe to show.
type Error struct {
	Code    string
	Message string
	// Details are extra fields of the error body, e.g. which quota.
	Details map[string]any
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with a formatted client-facing message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is what stores return when a row does not exist; services
// replace it with a message that names what was missing.
var ErrNotFound = &Error{Code: ENOTFOUND, Message: "not found"}

// ErrPayloadDropped is a version whose bytes retention has dropped; its
// metadata and hash remain.
var ErrPayloadDropped = &Error{Code: ENOTFOUND, Message: "the bytes of this version are no longer held"}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// when there is none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-facing message of err; internal errors get
// a generic one so driver or system details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
