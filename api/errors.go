package api

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/vss"
)

// statusByCode is the one table from domain error codes to HTTP statuses.
var statusByCode = map[string]int{
	backup.EINVALID:      http.StatusBadRequest,
	backup.EUNAUTHORIZED: http.StatusUnauthorized,
	backup.ENOTFOUND:     http.StatusNotFound,
	backup.EQUOTA:        http.StatusForbidden,
	backup.ECONFLICT:     http.StatusConflict,
	backup.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	backup.ERATELIMITED:  http.StatusTooManyRequests,
	backup.EUNAVAILABLE:  http.StatusServiceUnavailable,
	backup.EINTERNAL:     http.StatusInternalServerError,
	vss.ENOSUCHKEY:       http.StatusNotFound,
}

// statusError is an HTTP-level refusal with no domain meaning (405, 415).
type statusError struct {
	status  int
	message string
}

func (e *statusError) Error() string { return e.message }

// fail answers {"error": "..."} (a VSS request: an ErrorResponse) with the
// status for err, and logs it: 4xx at warn, 5xx at error with the cause
// (which the client never sees).
func (h *handlers) fail(c *gin.Context, err error) {
	status, msg := http.StatusInternalServerError, backup.ErrorMessage(err)
	var se *statusError
	if errors.As(err, &se) {
		status, msg = se.status, se.message
	} else if s, ok := statusByCode[backup.ErrorCode(err)]; ok {
		status = s
	}
	c.Set(ctxError, err)
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	h.deps.Logger.Log(c.Request.Context(), level, "request refused",
		"request_id", c.GetString(ctxRequestID), "route", c.FullPath(), "status", status, "error", err.Error())
	body := gin.H{}
	var e *backup.Error
	if errors.As(err, &e) {
		for k, v := range e.Details {
			body[k] = v
		}
		if e.RetryAfter > 0 {
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
		}
	}
	c.Header("Cache-Control", "no-store")
	if c.GetBool(ctxVSS) {
		vssError(c, status, err, vssMessage(msg, e))
		return
	}
	body["error"] = msg
	c.AbortWithStatusJSON(status, body)
}

// vssMessage is a refusal's message for an ErrorResponse, which has no
// fields of its own for a refusal's details (which quota): they go in the
// message, for the people reading the client's logs.
func vssMessage(msg string, e *backup.Error) string {
	if e == nil || len(e.Details) == 0 {
		return msg
	}
	// A quota's fields in the order they read; any others after them.
	order := map[string]int{"quota": 1, "limit": 2, "used": 3, "requested": 4}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if r, ok := order[k]; ok {
			return r
		}
		return len(order) + 1
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
	var b strings.Builder
	b.WriteString(msg)
	for i, k := range keys {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s %v", sep, k, e.Details[k])
	}
	return b.String()
}
