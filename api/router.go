// Package api is the HTTP face of the server: one function builds every
// route with the middleware its policy needs; handlers parse the request,
// call one service, and map its error to a status in one place.
package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"ldkbackup/internal/auth"
	"ldkbackup/internal/backup"
)

// BackupService is what the object handlers need.
type BackupService interface {
	Persist(ctx context.Context, req backup.PersistRequest) (backup.PersistResult, error)
	List(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, network, fileGroup string) (backup.Listing, error)
	Retrieve(ctx context.Context, tenant backup.TenantID, node backup.NodeKey, network, label, channelID string) ([]byte, error)
}

// AuthService is what the login handlers and the token middleware need.
type AuthService interface {
	IssueChallenge(ctx context.Context, req auth.ChallengeRequest) (string, error)
	Respond(ctx context.Context, tenant backup.TenantID, publicKey, signature string) (auth.Session, error)
	Authenticate(ctx context.Context, tenant backup.TenantID, authorization string) (backup.NodeKey, error)
}

// Deps is everything the router needs.
type Deps struct {
	Backup       BackupService
	Auth         AuthService
	Logger       *slog.Logger
	MaxBodyBytes int64
	Version      string
}

// Policy is who may call a route.
type Policy string

const (
	// PolicyPublic routes need no proof of anything.
	PolicyPublic Policy = "public"
	// PolicySigned routes carry the node's signature in each request.
	PolicySigned Policy = "signed"
	// PolicyToken routes need a bearer token from auth/response.
	PolicyToken Policy = "token"
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

func (h *handlers) routes() []route {
	return []route{
		{Route{http.MethodGet, "/v1/status", PolicyPublic}, h.status},
		{Route{http.MethodPost, "/v1/auth/challenge", PolicyPublic}, h.authChallenge},
		{Route{http.MethodPost, "/v1/auth/response", PolicyPublic}, h.authResponse},
		{Route{http.MethodPost, "/v1/persist", PolicySigned}, h.persist},
		{Route{http.MethodGet, "/v1/list", PolicyToken}, h.list},
		{Route{http.MethodGet, "/v1/retrieve", PolicyToken}, h.retrieve},
	}
}

// NewRouter builds the HTTP handler of the public port.
func NewRouter(d Deps) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	h := &handlers{deps: d}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(h.requestLog, h.recover, h.defaultTenant)
	r.NoRoute(func(c *gin.Context) { h.fail(c, backup.Errorf(backup.ENOTFOUND, "no such endpoint")) })
	r.NoMethod(func(c *gin.Context) {
		h.fail(c, &statusError{http.StatusMethodNotAllowed, "method not allowed"})
	})
	for _, rt := range h.routes() {
		chain := []gin.HandlerFunc{}
		if rt.Policy == PolicyToken {
			chain = append(chain, h.requireToken)
		}
		r.Handle(rt.Method, rt.Path, append(chain, rt.handler)...)
	}
	return r
}

// Routes lists every route with its policy, for tests and documentation.
func Routes() []Route {
	var out []Route
	for _, rt := range (&handlers{}).routes() {
		out = append(out, rt.Route)
	}
	return out
}
