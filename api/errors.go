package api

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"ldkbackup/internal/backup"
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
}

// statusError is an HTTP-level refusal with no domain meaning (405, 415).
type statusError struct {
	status  int
	message string
}

func (e *statusError) Error() string { return e.message }

// fail answers {"error": "..."} with the status for err, and logs it: 4xx at
// warn, 5xx at error with the cause (which the client never sees).
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
	body["error"] = msg
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(status, body)
}
