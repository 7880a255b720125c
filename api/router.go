// Package api is the HTTP face of the server: one function builds every
// route with the middleware its policy needs; handlers parse the request,
// call one service, and map its error to a status in one place.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/semaphore"

	"ldkbackup/internal/backup"
)

// BackupService is what the object handlers need.
type BackupService interface {
	Persist(ctx context.Context, p backup.ParsedPersist, body []byte) (backup.PersistResult, error)
	List(ctx context.Context, tenant *backup.Tenant, node backup.NodeKey, network, fileGroup string) (backup.Listing, error)
	Retrieve(ctx context.Context, req backup.RetrieveRequest, buf []byte) (*backup.Download, error)
	Versions(ctx context.Context, tenant *backup.Tenant, node backup.NodeKey, network, label, channelID, before, limit string) ([]backup.VersionInfo, error)
	DeleteAccount(ctx context.Context, tenant *backup.Tenant, node backup.NodeKey, network string) (backup.Deletion, error)
}

// TenantResolver finds the tenant a request is addressed to.
type TenantResolver interface {
	Resolve(ctx context.Context, slug string) (*backup.Tenant, error)
}

// AuthService is what the login handlers and the token middleware need.
type AuthService interface {
	IssueChallenge(ctx context.Context, req backup.ChallengeRequest) (string, error)
	Respond(ctx context.Context, tenant backup.TenantID, publicKey, signature string) (backup.Session, error)
	Authenticate(ctx context.Context, tenant backup.TenantID, authorization string) (backup.NodeKey, error)
}

// Limiter applies the rate limits checked outside a write.
type Limiter interface {
	HitAddress(ctx context.Context, t *backup.Tenant, addr string) error
	CheckAddress(ctx context.Context, t *backup.Tenant, addr string) error
	HitNode(ctx context.Context, t *backup.Tenant, node backup.NodeKey) error
}

// Observer is told about every finished request (metrics) and every event
// that reports count (logins, reads, persists, paced persists, signature
// failures, refusals). route is the route pattern, e.g.
// "/t/:tenant/v1/persist": its protocol is the segment after the tenant
// prefix. tenant is the resolved tenant's slug, "" before one was resolved.
// d leaves out the wait of a paced persist, which is its own event.
type Observer interface {
	Request(tenant, route string, status int, d time.Duration, in, out int64)
	Event(tenant *backup.Tenant, route, kind string, bytes int64)
}

// Deps is everything the router needs.
type Deps struct {
	Backup   BackupService
	Auth     AuthService
	Tenants  TenantResolver
	Limiter  Limiter
	Observer Observer
	// Ready says whether this replica can serve: the database answers and
	// its schema is current.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
	// Now is the clock a request's latency is measured on (the server's,
	// which a paced persist waits on); nil is time.Now.
	Now          func() time.Time
	MaxBodyBytes int64
	// InFlightBytes caps the payload bytes held in memory at once, persist
	// bodies and retrieve buffers together; a request waits up to
	// InFlightWait for room, then gets 503.
	InFlightBytes int64
	InFlightWait  time.Duration
	Version       string
	// VSS serves the VSS protocol; VSSAuth returns each tenant's
	// authorizer.
	VSS     VSSService
	VSSAuth VSSAuthorizers
	// TrustedProxies are the CIDRs whose X-Forwarded-For names the client;
	// from anyone else the header is ignored.
	TrustedProxies []string

	// RetrieveChunkBytes is a retrieve's buffer: the most of a version it
	// holds at a time.
	RetrieveChunkBytes int64
	// A retrieve's client that takes no bytes for SendStallTimeout is
	// dropped, and its whole reply may take at most WriteTimeout (the
	// server's, which a per-write deadline would otherwise replace).
	SendStallTimeout time.Duration
	WriteTimeout     time.Duration
}

// Policy is who may call a route.
type Policy string

const (
	// PolicyPublic routes need no proof of anything and cost nothing.
	PolicyPublic Policy = "public"
	// PolicyLogin routes (challenge and response) count every request
	// against the client address, before any signature is checked.
	PolicyLogin Policy = "login"
	// PolicySigned routes carry the node's signature in each request. An
	// address over its limit is refused before the signature is checked; a
	// failed signature or a malformed request counts against it. Node
	// limits apply in the write.
	PolicySigned Policy = "signed"
	// PolicyToken routes need a bearer token from auth/response: refused for
	// an address over its limit, failed tokens (and requests refused before
	// their token) count against the address, and each proven request
	// counts against the node.
	PolicyToken Policy = "token"
	// PolicyRead is PolicyToken for the reads of a restore (list, and
	// retrieve, which it repeats for every object): the read's own query
	// counts it against the node, in the same round trip (a malformed
	// request, refused before the query, is not counted).
	PolicyRead Policy = "read"
)

// Route is one endpoint and its policy.
type Route struct {
	Method string
	Path   string
	Policy Policy
}

type route struct {
	Route
	handler gin.HandlerFunc
}

// Tenant prefixes: the default tenant answers at /v1 exactly as the original
// server did; tenant "acme" at /t/acme/v1, so an app configured with
// https://host/t/acme builds its URLs unchanged.
const (
	defaultTenantPrefix = "/v1"
	namedTenantPrefix   = "/t/:tenant/v1"
)

// routes are the protocol's endpoints, relative to a tenant prefix.
func (h *handlers) routes() []route {
	return []route{
		{Route{http.MethodGet, "/status", PolicyPublic}, h.status},
		{Route{http.MethodPost, "/auth/challenge", PolicyLogin}, h.authChallenge},
		{Route{http.MethodPost, "/auth/response", PolicyLogin}, h.authResponse},
		{Route{http.MethodPost, "/persist", PolicySigned}, h.persist},
		{Route{http.MethodGet, "/list", PolicyRead}, h.list},
		{Route{http.MethodGet, "/retrieve", PolicyRead}, h.retrieve},
		{Route{http.MethodGet, "/versions", PolicyToken}, h.versions},
		{Route{http.MethodDelete, "/account", PolicyToken}, h.deleteAccount},
	}
}

// mount is a tenant prefix with the middleware that resolves its tenant.
type mount struct {
	prefix string
	tenant gin.HandlerFunc
}

// mounts pairs each tenant prefix with the middleware that resolves it.
func (h *handlers) mounts() []mount {
	return []mount{
		{defaultTenantPrefix, h.resolveTenant(func(*gin.Context) string { return backup.DefaultTenantSlug })},
		{namedTenantPrefix, h.resolveTenant(func(c *gin.Context) string { return c.Param("tenant") })},
	}
}

// NewRouter builds the HTTP handler of the public port.
func NewRouter(d Deps) (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	if d.Now == nil {
		d.Now = time.Now
	}
	budget := max(d.InFlightBytes, d.MaxBodyBytes, d.RetrieveChunkBytes)
	h := &handlers{deps: d, inFlight: semaphore.NewWeighted(budget), inFlightSize: budget}
	h.sendBuffers.New = func() any { b := make([]byte, d.RetrieveChunkBytes); return &b }
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// A path with a trailing slash is an unknown path, answered in its
	// protocol's way, not a redirect (which would carry no VSS header).
	r.RedirectTrailingSlash = false
	// gin trusts every proxy unless told otherwise: only the configured ones
	// may name the client, and only through X-Forwarded-For.
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		return nil, err
	}
	r.RemoteIPHeaders = []string{"X-Forwarded-For"}
	r.Use(h.requestLog, h.recover)
	r.NoRoute(func(c *gin.Context) {
		if isVSSPath(c.Request.URL.Path) {
			// The reference answers an unknown path 400; here it is a
			// decodable ErrorResponse too.
			vssWire(c)
			h.fail(c, backup.Errorf(backup.EINVALID, "Invalid request path."))
			return
		}
		h.fail(c, backup.Errorf(backup.ENOTFOUND, "no such endpoint"))
	})
	// Health checks for orchestrators, outside every tenant.
	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	r.NoMethod(func(c *gin.Context) {
		if isVSSPath(c.Request.URL.Path) {
			vssWire(c)
		}
		h.fail(c, &statusError{http.StatusMethodNotAllowed, "method not allowed"})
	})
	for _, m := range h.mounts() {
		for _, rt := range h.routes() {
			chain := append([]gin.HandlerFunc{m.tenant}, h.policy(rt.Policy)...)
			r.Handle(rt.Method, m.prefix+rt.Path, append(chain, rt.handler)...)
		}
	}
	for _, m := range h.vssMounts() {
		for _, rt := range h.vssRoutes() {
			// The protocol's header and error bodies come first, so that
			// even an unknown tenant is answered in the protocol's way.
			chain := append([]gin.HandlerFunc{vssWire, m.tenant}, h.policy(rt.Policy)...)
			r.Handle(rt.Method, m.prefix+rt.Path, append(chain, rt.handler)...)
		}
	}
	return r, nil
}

// policy is the middleware each policy puts before a route's handler.
func (h *handlers) policy(p Policy) []gin.HandlerFunc {
	switch p {
	case PolicyLogin:
		return []gin.HandlerFunc{h.countAddress}
	case PolicySigned:
		return []gin.HandlerFunc{h.guardAddress}
	case PolicyToken:
		return []gin.HandlerFunc{h.guardAddress, h.requireToken, h.limitNode}
	case PolicyRead:
		return []gin.HandlerFunc{h.guardAddress, h.requireToken}
	case PolicyVSS:
		return []gin.HandlerFunc{h.guardAddress, h.vssPrecheck, h.vssAuthenticate}
	}
	return nil
}

// Routes lists every route, under every tenant prefix, with its policy.
func Routes() []Route {
	h := &handlers{}
	var out []Route
	for _, m := range h.mounts() {
		for _, rt := range h.routes() {
			out = append(out, Route{rt.Method, m.prefix + rt.Path, rt.Policy})
		}
	}
	for _, m := range h.vssMounts() {
		for _, rt := range h.vssRoutes() {
			out = append(out, Route{rt.Method, m.prefix + rt.Path, rt.Policy})
		}
	}
	return out
}
