package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"ldkbackup/internal/backup"
)

// sendPiece is how much of a chunk is written at a time. Each piece renews
// the write deadline, so a client that takes no bytes for SendStallTimeout
// is dropped, while one that reads slowly but steadily is not.
const sendPiece = 32 << 10

// unpinWait bounds ending a retrieve's pin after the reply: the pin expires
// by itself, so a slow database is not worth waiting for.
const unpinWait = 5 * time.Second

// takeSendBuffer takes a retrieve's buffer, RetrieveChunkBytes of the
// in-flight budget that persist bodies also come out of, for the whole
// reply. When the budget stays full for InFlightWait the retrieve gets 503
// before anything is read. release returns the buffer and its budget.
func (h *handlers) takeSendBuffer(c *gin.Context) (buf []byte, release func(), err error) {
	n := h.deps.RetrieveChunkBytes
	if err := h.takeBudget(c, n); err != nil {
		return nil, nil, &backup.Error{Code: backup.EUNAVAILABLE, Message: "server busy: too many transfers in flight, retry shortly", RetryAfter: time.Second}
	}
	p := h.sendBuffers.Get().(*[]byte)
	return *p, func() {
		h.sendBuffers.Put(p)
		h.inFlight.Release(n)
	}, nil
}

// download is a reply read a chunk at a time: a retrieve's version
// (backup.Download), or a getObject's response (vss.Value).
type download interface {
	Size() int64
	Next(ctx context.Context) ([]byte, error)
	Close(ctx context.Context) error
}

// send writes d as the reply, a chunk at a time, holding no database
// connection while it writes. The reply states its exact length up front; a
// reply cut short (a database error, a stalled or vanished client) leaves
// the length unmet, so net/http closes the connection and the client sees
// a short body, never a wrong one. start is when the request began: the
// whole reply still ends by WriteTimeout after it.
func (h *handlers) send(c *gin.Context, d download, start time.Time) {
	defer h.closeDownload(c, d)
	ctx := c.Request.Context()
	var end time.Time
	if h.deps.WriteTimeout > 0 {
		end = start.Add(h.deps.WriteTimeout)
	}
	// A chunk's query is not cut off when the client goes: pgx closes a
	// connection whose query is cancelled, and a client that hangs up mid-way
	// would cost the pool a connection. The query takes milliseconds; the
	// loop stops before the next one, and the reply's end bounds them all.
	readCtx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if !end.IsZero() {
		readCtx, cancel = context.WithDeadline(readCtx, end)
	}
	defer cancel()
	rc := http.NewResponseController(c.Writer)
	c.Header("Content-Type", "application/octet-stream")
	// Without an explicit length net/http would chunk a large reply.
	c.Header("Content-Length", strconv.FormatInt(d.Size(), 10))
	c.Status(http.StatusOK)
	var sent int64
	for {
		if err := ctx.Err(); err != nil {
			h.sendCut(c, slog.LevelWarn, "the client went away", sent, d.Size(), err)
			return
		}
		chunk, err := d.Next(readCtx)
		if err == io.EOF {
			return
		}
		if err != nil {
			h.sendCut(c, slog.LevelError, "reading the version failed", sent, d.Size(), err)
			return
		}
		for len(chunk) > 0 {
			n := min(len(chunk), sendPiece)
			if err := rc.SetWriteDeadline(h.pieceDeadline(end)); err != nil {
				h.sendCut(c, slog.LevelError, "cannot set a write deadline", sent, d.Size(), err)
				return
			}
			if _, err := c.Writer.Write(chunk[:n]); err != nil {
				h.sendCut(c, slog.LevelWarn, "the client stopped taking bytes", sent, d.Size(), err)
				return
			}
			sent += int64(n)
			chunk = chunk[n:]
		}
	}
}

// pieceDeadline is when the next piece must have been taken: within
// SendStallTimeout, and never after the reply's end.
func (h *handlers) pieceDeadline(end time.Time) time.Time {
	if h.deps.SendStallTimeout <= 0 {
		return end
	}
	stall := time.Now().Add(h.deps.SendStallTimeout)
	if !end.IsZero() && end.Before(stall) {
		return end
	}
	return stall
}

// sendCut logs a reply that ends short of its length: at warn when the
// client stalled or went away, at error when the server failed it.
func (h *handlers) sendCut(c *gin.Context, level slog.Level, reason string, sent, size int64, err error) {
	h.deps.Logger.Log(c.Request.Context(), level, "retrieve cut short", "request_id", c.GetString(ctxRequestID),
		"reason", reason, "bytes_sent", sent, "size", size, "error", err.Error())
}

// closeDownload ends the version's pin, even when the client has gone.
func (h *handlers) closeDownload(c *gin.Context, d download) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), unpinWait)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		h.deps.Logger.Warn("ending a retrieve's pin failed; it expires by itself",
			"request_id", c.GetString(ctxRequestID), "error", err.Error())
	}
}
