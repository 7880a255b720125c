package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/semaphore"

	"ldkbackup/internal/auth"
	"ldkbackup/internal/backup"
)

// maxJSONBody bounds the auth requests: a timestamp and a signature.
const maxJSONBody = 16 << 10

type handlers struct {
	deps     Deps
	inFlight *semaphore.Weighted // bytes of persist bodies in memory
}

func (h *handlers) status(c *gin.Context) {
	// "hello": "world" is what the original answered; monitors may check it.
	c.JSON(http.StatusOK, gin.H{"hello": "world", "status": "ok", "version": h.deps.Version})
}

// healthz says the process is alive; it touches nothing else.
func (h *handlers) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz says whether this replica can serve: the database answers and has
// every migration this release needs.
func (h *handlers) readyz(c *gin.Context) {
	if err := h.deps.Ready(c.Request.Context()); err != nil {
		if backup.ErrorCode(err) == backup.EINTERNAL {
			err = &wrappedUnavailable{err}
		}
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// wrappedUnavailable reports an unexpected readiness failure as 503, not
// 500: the replica is not ready, whatever the reason.
type wrappedUnavailable struct{ cause error }

func (w *wrappedUnavailable) Error() string { return w.cause.Error() }
func (w *wrappedUnavailable) Unwrap() []error {
	return []error{backup.Errorf(backup.EUNAVAILABLE, "not ready"), w.cause}
}

func (h *handlers) authChallenge(c *gin.Context) {
	var body struct {
		Timestamp json.RawMessage `json:"timestamp"`
		Signature string          `json:"signature"`
	}
	if err := readJSON(c, &body); err != nil {
		h.fail(c, err)
		return
	}
	challenge, err := h.deps.Auth.IssueChallenge(c.Request.Context(), auth.ChallengeRequest{
		Tenant:    tenantOf(c).ID,
		PublicKey: c.GetHeader("Public-Key"),
		Timestamp: body.Timestamp,
		Signature: body.Signature,
	})
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"challenge": challenge})
}

func (h *handlers) authResponse(c *gin.Context) {
	var body struct {
		Signature string `json:"signature"`
	}
	if err := readJSON(c, &body); err != nil {
		h.fail(c, err)
		return
	}
	sess, err := h.deps.Auth.Respond(c.Request.Context(), tenantOf(c).ID, c.GetHeader("Public-Key"), body.Signature)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"bearer": sess.Token, "expires": sess.Expires.UnixMilli()})
}

func (h *handlers) persist(c *gin.Context) {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/octet-stream" {
			h.fail(c, &statusError{http.StatusUnsupportedMediaType, "Content-Type must be application/octet-stream"})
			return
		}
	}
	release, err := h.reserveBody(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	defer release()
	body, err := readBody(c, h.deps.MaxBodyBytes)
	if err != nil {
		h.fail(c, err)
		return
	}
	res, err := h.deps.Backup.Persist(c.Request.Context(), backup.PersistRequest{
		Tenant:     tenantOf(c),
		PublicKey:  c.GetHeader("Public-Key"),
		SignedHash: c.GetHeader("Signed-Hash"),
		Challenge:  c.GetHeader("Challenge"),
		Network:    c.Query("network"),
		Label:      c.Query("label"),
		ChannelID:  c.Query("channelId"),
		Body:       body,
		Address:    addressOf(c),
	})
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "signature": res.Signature, "version": res.Version})
}

func (h *handlers) list(c *gin.Context) {
	l, err := h.deps.Backup.List(c.Request.Context(), tenantOf(c), nodeOf(c), c.Query("network"), c.Query("fileGroup"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, l)
}

func (h *handlers) retrieve(c *gin.Context) {
	payload, err := h.deps.Backup.Retrieve(c.Request.Context(), tenantOf(c), nodeOf(c), c.Query("network"), c.Query("label"), c.Query("channelId"), c.Query("version"))
	if err != nil {
		h.fail(c, err)
		return
	}
	// An explicit length: without it net/http would chunk large payloads.
	c.Header("Content-Length", strconv.Itoa(len(payload)))
	c.Data(http.StatusOK, "application/octet-stream", payload)
}

func (h *handlers) versions(c *gin.Context) {
	vs, err := h.deps.Backup.Versions(c.Request.Context(), tenantOf(c), nodeOf(c),
		c.Query("network"), c.Query("label"), c.Query("channelId"), c.Query("before"), c.Query("limit"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"versions": vs})
}

func (h *handlers) deleteAccount(c *gin.Context) {
	d, err := h.deps.Backup.DeleteAccount(c.Request.Context(), tenantOf(c), nodeOf(c), c.Query("network"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"deleted": d})
}

// reserveBody takes room for a persist body in the in-flight budget before
// it is read, so memory stays bounded however many large uploads arrive at
// once: the declared length, or the largest allowed body when none is
// declared. Over the budget a request waits, then gets 503.
func (h *handlers) reserveBody(c *gin.Context) (func(), error) {
	n := c.Request.ContentLength
	if n < 0 || n > h.deps.MaxBodyBytes {
		n = h.deps.MaxBodyBytes // over the limit is refused by readBody without reading
	}
	if n == 0 {
		return func() {}, nil
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.deps.InFlightWait)
	defer cancel()
	if err := h.inFlight.Acquire(ctx, n); err != nil {
		return nil, &backup.Error{Code: backup.EUNAVAILABLE, Message: "server busy: too many uploads in flight, retry shortly", RetryAfter: time.Second}
	}
	return func() { h.inFlight.Release(n) }, nil
}

// readBody reads a persist body of at most limit bytes. A declared length
// over the limit is refused before a byte is read; an undeclared one is cut
// off just past the limit.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	r := c.Request
	if r.ContentLength > limit {
		return nil, backup.Errorf(backup.ETOOLARGE, "body of %d bytes is over the limit of %d bytes", r.ContentLength, limit)
	}
	if r.ContentLength >= 0 {
		// One allocation of the declared size; net/http stops the reader at
		// that length, and a short body is an error.
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, backup.Errorf(backup.EINVALID, "body shorter than its Content-Length")
		}
		return buf, nil
	}
	buf, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, backup.Errorf(backup.ETOOLARGE, "body is over the limit of %d bytes", limit)
	}
	if err != nil {
		return nil, backup.Errorf(backup.EINVALID, "could not read body")
	}
	return buf, nil
}

// readJSON decodes a small JSON object body into dst. A Content-Type other
// than JSON is refused; none at all is accepted, as a lenient client may
// send none.
func readJSON(c *gin.Context, dst any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &statusError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
		}
	}
	raw, err := readBody(c, maxJSONBody)
	if err != nil {
		var e *backup.Error
		if errors.As(err, &e) && e.Code == backup.ETOOLARGE {
			return backup.Errorf(backup.ETOOLARGE, "JSON body is over the limit of %d bytes", maxJSONBody)
		}
		return err
	}
	if len(raw) == 0 {
		return backup.Errorf(backup.EINVALID, "missing JSON body")
	}
	if err := checkUniqueKeys(raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return backup.Errorf(backup.EINVALID, "body is not a valid JSON object of the expected shape")
	}
	return nil
}

// checkUniqueKeys refuses a JSON object that names a field twice: decoders
// disagree on which one wins, and a signature must cover one meaning.
func checkUniqueKeys(raw []byte) error {
	invalid := backup.Errorf(backup.EINVALID, "body is not a valid JSON object of the expected shape")
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return invalid
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return invalid
		}
		if seen[key] {
			return backup.Errorf(backup.EINVALID, "field %q appears twice", truncateKey(key))
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return invalid
		}
	}
	return nil
}

func truncateKey(k string) string {
	if len(k) > 32 {
		return k[:32] + "..."
	}
	return k
}
