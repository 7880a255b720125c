package api

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"google.golang.org/protobuf/proto"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/vss"
	"ldkbackup/internal/vsspb"
)

// VSSService is what the VSS handlers need.
type VSSService interface {
	Get(ctx context.Context, u vss.User, req *vsspb.GetObjectRequest, buf []byte) (*vss.Value, error)
	Put(ctx context.Context, u vss.User, addr string, req *vsspb.PutObjectRequest) (waited time.Duration, err error)
	Delete(ctx context.Context, u vss.User, addr string, req *vsspb.DeleteObjectRequest) (waited time.Duration, err error)
	List(ctx context.Context, u vss.User, req *vsspb.ListKeyVersionsRequest) (*vsspb.ListKeyVersionsResponse, error)
}

// VSSAuthorizer proves whose a VSS request is from its headers: the user
// token, or an error (code EUNAUTHORIZED for a refusal, whose message the
// client sees).
type VSSAuthorizer interface {
	Authorize(ctx context.Context, h http.Header) (userToken string, err error)
}

// VSSAuthorizers returns the authorizer a tenant chose.
type VSSAuthorizers func(ctx context.Context, t *backup.Tenant) (VSSAuthorizer, error)

// The VSS protocol's base paths: /vss for the default tenant, /t/SLUG/vss
// for a tenant, so a client configured with https://host/t/acme/vss builds
// its URLs unchanged.
const (
	defaultVSSPrefix = "/vss"
	namedVSSPrefix   = "/t/:tenant/vss"
)

// vssProtocolHeader is on every VSS response, errors included: vss-client
// refuses a response without it, and does not retry.
const (
	vssProtocolHeader  = "vss-protocol-version"
	vssProtocolVersion = "0"
	vssMediaType       = "application/octet-stream"
)

// PolicyVSS routes carry a VSS authorization in each request, checked by
// the tenant's authorizer. An address over its limit is refused before
// it is checked; a failed authorization or a malformed request counts
// against the address. User limits apply in the store's queries.
const PolicyVSS Policy = "vss"

// ctxVSS marks a request of the VSS protocol: its errors are ErrorResponse
// protobufs. ctxVSSUser is the user it proved.
const (
	ctxVSS     = "vss"
	ctxVSSUser = "vss_user"
)

// vssRoutes are the protocol's endpoints, relative to a VSS prefix.
func (h *handlers) vssRoutes() []route {
	return []route{
		{Route{http.MethodPost, "/getObject", PolicyVSS}, h.vssGet},
		{Route{http.MethodPost, "/putObjects", PolicyVSS}, h.vssPut},
		{Route{http.MethodPost, "/deleteObject", PolicyVSS}, h.vssDelete},
		{Route{http.MethodPost, "/listKeyVersions", PolicyVSS}, h.vssList},
	}
}

func (h *handlers) vssMounts() []mount {
	return []mount{
		{defaultVSSPrefix, h.resolveTenant(func(*gin.Context) string { return backup.DefaultTenantSlug })},
		{namedVSSPrefix, h.resolveTenant(func(c *gin.Context) string { return c.Param("tenant") })},
	}
}

// isVSSPath says whether path lies under a VSS prefix, for the answers of
// paths and methods no route serves.
func isVSSPath(path string) bool {
	if path == defaultVSSPrefix || strings.HasPrefix(path, defaultVSSPrefix+"/") {
		return true
	}
	parts := strings.SplitN(path, "/", 5) // "", "t", slug, "vss", ...
	return len(parts) >= 4 && parts[1] == "t" && parts[3] == "vss"
}

// vssWire makes a request answer in the VSS protocol's way: the protocol
// version on every response, and errors as ErrorResponse.
func vssWire(c *gin.Context) {
	c.Set(ctxVSS, true)
	c.Header(vssProtocolHeader, vssProtocolVersion)
	c.Next()
}

// vssPrecheck refuses what can be refused without the body or a proof: a
// body that is not protobuf, or one declared larger than MAX_BODY_BYTES
// (413 before any of it is read).
func (h *handlers) vssPrecheck(c *gin.Context) {
	if err := requireVSSMediaType(c); err != nil {
		h.fail(c, h.refuseUnread(c, err))
		return
	}
	if n := c.Request.ContentLength; n > h.deps.MaxBodyBytes {
		h.fail(c, h.refuseUnread(c, backup.TooLarge("body of %d bytes is over the limit of %d bytes", n, h.deps.MaxBodyBytes)))
		return
	}
	c.Next()
}

// requireVSSMediaType accepts what the clients send (application/
// octet-stream), the protobuf media types, or none, as the reference does
// not look; anything else (a form, JSON, text) is refused with 415.
func requireVSSMediaType(c *gin.Context) error {
	ct := c.GetHeader("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		switch mt {
		case vssMediaType, "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf":
			return nil
		}
	}
	return &statusError{http.StatusUnsupportedMediaType, "Content-Type must be " + vssMediaType}
}

// vssAuthenticate admits a request only with an authorization the tenant's
// authorizer accepts, and records whose it is.
func (h *handlers) vssAuthenticate(c *gin.Context) {
	ctx, t := c.Request.Context(), tenantOf(c)
	a, err := h.deps.VSSAuth(ctx, t)
	if err != nil {
		h.fail(c, h.refuseUnread(c, err))
		return
	}
	token, err := a.Authorize(ctx, c.Request.Header)
	if err != nil {
		h.fail(c, h.refuseUnread(c, err))
		return
	}
	u, err := vss.NewUser(t, token)
	if err != nil {
		h.fail(c, h.refuseUnread(c, err))
		return
	}
	c.Set(ctxVSSUser, u)
	c.Next()
}

func vssUserOf(c *gin.Context) vss.User { return c.MustGet(ctxVSSUser).(vss.User) }

// readVSS reads and decodes a request body into m. The body's bytes come out
// of the in-flight budget as they arrive, as a persist's do, and so do the
// values a putObjects decodes from them, a copy of their own (a request
// never takes more than the whole budget: with IN_FLIGHT_BYTES at
// MAX_BODY_BYTES the copy of a body at the limit is not counted); release
// returns them all, once m is no longer needed.
func (h *handlers) readVSS(c *gin.Context, m proto.Message) (release func(), err error) {
	body, releaseBody, err := h.readUpload(c, h.deps.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(body, m); err != nil {
		releaseBody()
		return nil, backup.Errorf(backup.EINVALID, "body is not a valid %s", m.ProtoReflect().Descriptor().Name())
	}
	put, ok := m.(*vsspb.PutObjectRequest)
	if !ok {
		return releaseBody, nil
	}
	var values int64
	for _, kv := range put.TransactionItems {
		values += int64(len(kv.Value))
	}
	values = min(values, h.inFlightSize-int64(cap(body)))
	if values <= 0 {
		return releaseBody, nil
	}
	if err := h.takeBudget(c, values); err != nil {
		releaseBody()
		return nil, err
	}
	return func() {
		h.inFlight.Release(values)
		releaseBody()
	}, nil
}

func (h *handlers) vssGet(c *gin.Context) {
	start := time.Now()
	var req vsspb.GetObjectRequest
	release, err := h.readVSS(c, &req)
	if err != nil {
		h.fail(c, err)
		return
	}
	release() // the request is small; the reply's buffer is taken next
	buf, releaseBuf, err := h.takeSendBuffer(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	defer releaseBuf()
	v, err := h.deps.VSS.Get(c.Request.Context(), vssUserOf(c), &req, buf)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.send(c, v, start)
}

func (h *handlers) vssPut(c *gin.Context) {
	var req vsspb.PutObjectRequest
	release, err := h.readVSS(c, &req)
	if err != nil {
		h.fail(c, err)
		return
	}
	defer release()
	waited, err := h.deps.VSS.Put(c.Request.Context(), vssUserOf(c), addressOf(c), &req)
	if waited > 0 {
		c.Set(ctxWaited, waited)
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	h.vssReply(c, &vsspb.PutObjectResponse{})
}

func (h *handlers) vssDelete(c *gin.Context) {
	var req vsspb.DeleteObjectRequest
	release, err := h.readVSS(c, &req)
	if err != nil {
		h.fail(c, err)
		return
	}
	defer release()
	waited, err := h.deps.VSS.Delete(c.Request.Context(), vssUserOf(c), addressOf(c), &req)
	if waited > 0 {
		c.Set(ctxWaited, waited)
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	h.vssReply(c, &vsspb.DeleteObjectResponse{})
}

func (h *handlers) vssList(c *gin.Context) {
	var req vsspb.ListKeyVersionsRequest
	release, err := h.readVSS(c, &req)
	if err != nil {
		h.fail(c, err)
		return
	}
	release()
	resp, err := h.deps.VSS.List(c.Request.Context(), vssUserOf(c), &req)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.vssReply(c, resp)
}

func (h *handlers) vssReply(c *gin.Context, m proto.Message) {
	b, err := proto.Marshal(m)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Data(http.StatusOK, vssMediaType, b)
}

// vssErrorCode is the ErrorResponse code of a refusal with status and
// domain code. The clients act on the code alone: ldk-node retries AUTH
// and INTERNAL_SERVER and gives up on the others, so a refusal worth
// retrying later (429, 503) is INTERNAL_SERVER, and one that will not go
// away by retrying (a quota, a body too large, an unknown tenant) is
// INVALID_REQUEST. Only a missing key is NO_SUCH_KEY: ldk-node reads it as
// "never written".
func vssErrorCode(status int, code string) vsspb.ErrorCode {
	switch {
	case code == vss.ENOSUCHKEY:
		return vsspb.ErrorCode_NO_SUCH_KEY_EXCEPTION
	case status == http.StatusConflict:
		return vsspb.ErrorCode_CONFLICT_EXCEPTION
	case status == http.StatusUnauthorized:
		return vsspb.ErrorCode_AUTH_EXCEPTION
	case status >= 500 || status == http.StatusTooManyRequests:
		return vsspb.ErrorCode_INTERNAL_SERVER_EXCEPTION
	}
	return vsspb.ErrorCode_INVALID_REQUEST_EXCEPTION
}

// vssError writes a refusal as the VSS protocol's ErrorResponse.
func vssError(c *gin.Context, status int, err error, msg string) {
	var se *statusError
	code := backup.ErrorCode(err)
	if errors.As(err, &se) {
		code = ""
	}
	body, mErr := proto.Marshal(&vsspb.ErrorResponse{ErrorCode: vssErrorCode(status, code), Message: msg})
	if mErr != nil {
		body = nil
	}
	c.Abort()
	c.Data(status, vssMediaType, body)
}
