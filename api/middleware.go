package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/limits"
)

// Keys of values middleware leaves in the gin context.
const (
	ctxRequestID = "request_id"
	ctxTenant    = "tenant"
	ctxNode      = "node"
)

// requestLog gives each request an id (also sent back as X-Request-Id) and
// logs one line when it ends. It never logs tokens, signatures or bodies.
func (h *handlers) requestLog(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()

	attrs := []any{
		"request_id", id,
		"method", c.Request.Method,
		"route", c.FullPath(),
		"status", c.Writer.Status(),
		"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
		"bytes_in", c.Request.ContentLength,
		"bytes_out", c.Writer.Size(),
	}
	if t, ok := c.Get(ctxTenant); ok {
		attrs = append(attrs, "tenant", t.(*backup.Tenant).Slug)
	}
	if node, ok := c.Get(ctxNode); ok {
		attrs = append(attrs, "node", node.(backup.NodeKey).Short())
	}
	h.deps.Logger.LogAttrs(c.Request.Context(), slog.LevelInfo, "request", slogAttrs(attrs)...)
}

func slogAttrs(kv []any) []slog.Attr {
	out := make([]slog.Attr, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, slog.Any(kv[i].(string), kv[i+1]))
	}
	return out
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
func addressOf(c *gin.Context) string { return limits.ClientAddress(c.ClientIP()) }

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
// proof is checked, and counts the request against the address when its
// proof (signature or token) fails.
func (h *handlers) guardAddress(c *gin.Context) {
	t, addr := tenantOf(c), addressOf(c)
	if err := h.deps.Limiter.CheckAddress(c.Request.Context(), t, addr); err != nil {
		h.fail(c, err)
		return
	}
	c.Next()
	if c.Writer.Status() == http.StatusUnauthorized {
		if err := h.deps.Limiter.HitAddress(c.Request.Context(), t, addr); err != nil && backup.ErrorCode(err) != backup.ERATELIMITED {
			h.deps.Logger.Warn("counting a failed proof", "error", err)
		}
	}
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
