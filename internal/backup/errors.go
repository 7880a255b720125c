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
	// Refusal names the limit or rule that refused the request, "" for
	// any other error: reports and node_refusals count by it.
	Refusal Refusal
}

// Refusal is the limit or rule that refused a request.
type Refusal string

// Refusals. Each store maps its own refusals to these once (the SQL
// functions raise one SQLSTATE each); nothing reads a message or a status
// to tell them apart.
const (
	RefusedRateAddress  Refusal = "rate_address"  // requests per client address
	RefusedRateNode     Refusal = "rate_node"     // requests per node
	RefusedNewNodes     Refusal = "new_nodes"     // new node keys per client address
	RefusedQuotaBytes   Refusal = "quota_bytes"   // bytes per node
	RefusedQuotaObjects Refusal = "quota_objects" // objects per node
	RefusedQuotaUploads Refusal = "quota_uploads" // uploads remembered per node
	RefusedReplay       Refusal = "replay"        // bytes the node uploaded before
	RefusedBodySize     Refusal = "body_size"     // a body over MAX_BODY_BYTES
)

// RefusalOf returns the refusal of the first *Error in err's chain, "" when
// err is no refusal.
func RefusalOf(err error) Refusal {
	var e *Error
	if errors.As(err, &e) {
		return e.Refusal
	}
	return ""
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with a formatted client-facing message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// TooLarge is the refusal (413) of a body over its limit.
func TooLarge(format string, args ...any) *Error {
	e := Errorf(ETOOLARGE, format, args...)
	e.Refusal = RefusedBodySize
	return e
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
