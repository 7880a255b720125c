package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/vss"
)

// Keys of values middleware leaves in the gin context.
const (
	ctxRequestID = "request_id"
	ctxTenant    = "tenant"
	ctxNode      = "node"
	ctxError     = "error"
	ctxStored    = "stored" // a persist stored a new version
	ctxWaited    = "waited" // how long a paced persist waited for its turn
)

// requestLog gives each request an id (also sent back as X-Request-Id) and
// logs one line when it ends. It never logs tokens, signatures or bodies.
func (h *handlers) requestLog(c *gin.Context) {
	start := h.deps.Now()
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	body := &countingBody{ReadCloser: c.Request.Body}
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		c.Request.Body = body
	}
	c.Next()

	elapsed := h.deps.Now().Sub(start)
	route, status := c.FullPath(), c.Writer.Status()
	// The bytes read, not the declared Content-Length: a refused body (413)
	// is mostly never read, and a lying client declares what it likes.
	in, out := body.n, int64(max(c.Writer.Size(), 0))
	value, _ := c.Get(ctxTenant)
	tenant, _ := value.(*backup.Tenant) // nil before a tenant was resolved
	var slug string
	if tenant != nil {
		slug = tenant.Slug
	}
	// A paced persist's wait is the node's doing, not the server's: latency
	// leaves it out, and the wait is counted as its own event.
	waited := c.GetDuration(ctxWaited)
	h.deps.Observer.Request(slug, route, status, max(elapsed-waited, 0), in, out)
	if tenant != nil {
		if kind := eventOf(c, route, status); kind != "" {
			var bytes int64
			switch kind {
			case backup.EventRetrieve, backup.EventVSSGet:
				bytes = out
			case backup.EventPersist, backup.EventVSSPut:
				bytes = in
			}
			h.deps.Observer.Event(tenant, route, kind, bytes)
		}
		if waited > 0 {
			h.deps.Observer.Event(tenant, route, backup.EventPaced, 0)
		}
	}
	ctx := c.Request.Context()
	if !h.deps.Logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
	}
	if tenant != nil {
		attrs = append(attrs, slog.String("tenant", tenant.Slug))
	}
	if node, ok := logNode(c); ok {
		attrs = append(attrs, slog.String("node", node.Short()))
	}
	if u, ok := c.Get(ctxVSSUser); ok {
		attrs = append(attrs, slog.String("user", u.(vss.User).Short()))
	}
	h.deps.Logger.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// countingBody counts the bytes of a request body that were read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// logNode is the node a request is by: the token's, else the key it claims
// (only a short prefix is ever logged).
func logNode(c *gin.Context) (backup.NodeKey, bool) {
	if node, ok := c.Get(ctxNode); ok {
		return node.(backup.NodeKey), true
	}
	k, err := backup.ParseNodeKey(c.GetHeader("Public-Key"))
	return k, err == nil
}

// eventOf is what a finished request counts as in reports, "" for nothing.
func eventOf(c *gin.Context, route string, status int) string {
	is := func(suffix string) bool { return strings.HasSuffix(route, suffix) }
	switch status {
	case http.StatusOK:
		switch {
		case c.GetBool(ctxVSS) && is("/putObjects"):
			return backup.EventVSSPut
		case c.GetBool(ctxVSS) && is("/getObject"):
			return backup.EventVSSGet
		case c.GetBool(ctxVSS) && is("/deleteObject"):
			return backup.EventVSSDelete
		case c.GetBool(ctxVSS) && is("/listKeyVersions"):
			return backup.EventVSSList
		case is("/auth/response"):
			return backup.EventLogin
		case is("/retrieve"):
			return backup.EventRetrieve
		case is("/persist") && c.GetBool(ctxStored):
			return backup.EventPersist
		}
	case http.StatusUnauthorized:
		if is("/persist") || is("/auth/challenge") || is("/auth/response") || c.GetBool(ctxVSS) {
			return backup.EventSignatureFailure
		}
	}
	if err, ok := c.Get(ctxError); ok {
		switch backup.RefusalOf(err.(error)) {
		case backup.RefusedRateAddress:
			return backup.EventRefusedRateAddress
		case backup.RefusedRateNode:
			return backup.EventRefusedRateNode
		case backup.RefusedNewNodes:
			return backup.EventRefusedNewNodes
		case backup.RefusedQuotaBytes, backup.RefusedQuotaObjects, backup.RefusedQuotaUploads:
			return backup.EventRefusedQuota
		case backup.RefusedBodySize:
			return backup.EventRefusedBodySize
		case backup.RefusedReplay:
			return backup.EventRefusedReplay
		}
	}
	return ""
}

// recover turns a panic into a 500 with the usual error body.
func (h *handlers) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			h.fail(c, fmt.Errorf("panic: %v", p))
		}
	}()
	c.Next()
}

// resolveTenant finds the request's tenant from its slug; unknown and
// disabled tenants are refused before anything else happens.
func (h *handlers) resolveTenant(slug func(*gin.Context) string) gin.HandlerFunc {
	return func(c *gin.Context) {
		t, err := h.deps.Tenants.Resolve(c.Request.Context(), slug(c))
		if err != nil {
			h.fail(c, err)
			return
		}
		c.Set(ctxTenant, t)
		c.Next()
	}
}

func tenantOf(c *gin.Context) *backup.Tenant {
	return c.MustGet(ctxTenant).(*backup.Tenant)
}

// addressOf is the client address that per-address limits count.
func addressOf(c *gin.Context) string { return backup.ClientAddress(c.ClientIP()) }

// countAddress counts every request against the client address and refuses
// it past the limit.
func (h *handlers) countAddress(c *gin.Context) {
	if err := h.deps.Limiter.HitAddress(c.Request.Context(), tenantOf(c), addressOf(c)); err != nil {
		h.fail(c, err)
		return
	}
	c.Next()
}

// guardAddress refuses a request from an address over its limit before any
// proof is checked, and counts the request against the address when it did
// not prove itself: a malformed request (400, 413, 415) costs the server as
// much as a forged one (401), so a flood of either uses up the address's
// allowance. Refusals after a proof, or that are not the client's doing
// (403, 404, 409, 429, 503), do not count.
func (h *handlers) guardAddress(c *gin.Context) {
	t, addr := tenantOf(c), addressOf(c)
	if err := h.deps.Limiter.CheckAddress(c.Request.Context(), t, addr); err != nil {
		h.fail(c, err)
		return
	}
	c.Next()
	if unproven(c) {
		// Counted even when the client has gone: a refusal that drained
		// and closed the connection (refuseUnread), or a prober that hangs
		// up at once, has cancelled the request's context.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), countTimeout)
		defer cancel()
		if err := h.deps.Limiter.HitAddress(ctx, t, addr); err != nil && backup.ErrorCode(err) != backup.ERATELIMITED {
			h.deps.Logger.Warn("counting a request that failed to prove itself", "error", err)
		}
	}
}

// countTimeout bounds counting a refused request once its client is gone.
const countTimeout = 5 * time.Second

// unproven says whether a finished request was refused before it proved a
// node's key. A token route's 400 after its token checked out is an honest
// wallet's mistake, not a probe, so it does not count.
func unproven(c *gin.Context) bool {
	switch c.Writer.Status() {
	case http.StatusUnauthorized:
		return true
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		_, node := c.Get(ctxNode)
		_, user := c.Get(ctxVSSUser)
		return !node && !user
	}
	return false
}

// limitNode counts a proven read against the node.
func (h *handlers) limitNode(c *gin.Context) {
	if err := h.deps.Limiter.HitNode(c.Request.Context(), tenantOf(c), nodeOf(c)); err != nil {
		h.fail(c, err)
		return
	}
	c.Next()
}

// requireToken admits a request only with a live bearer token and records
// whose it is.
func (h *handlers) requireToken(c *gin.Context) {
	node, err := h.deps.Auth.Authenticate(c.Request.Context(), tenantOf(c).ID, c.GetHeader("Authorization"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Set(ctxNode, node)
	c.Next()
}

func nodeOf(c *gin.Context) backup.NodeKey {
	return c.MustGet(ctxNode).(backup.NodeKey)
}
