package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/semaphore"

	"ldkbackup/internal/backup"
)

// maxJSONBody bounds the auth requests: a timestamp and a signature.
const maxJSONBody = 16 << 10

type handlers struct {
	deps     Deps
	inFlight *semaphore.Weighted // payload bytes in memory: persist bodies and retrieve buffers
	// inFlightSize is inFlight's size: no request may ever hold more.
	inFlightSize int64
	// sendBuffers are retrieve buffers of RetrieveChunkBytes, reused so that
	// a retrieve allocates nothing for its payload; each one in use is
	// counted in inFlight.
	sendBuffers sync.Pool
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
	challenge, err := h.deps.Auth.IssueChallenge(c.Request.Context(), backup.ChallengeRequest{
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
	// Everything but the body is checked first: a malformed request is
	// refused without reading (or holding) an upload of up to MaxBodyBytes.
	if err := requireMediaType(c, "application/octet-stream"); err != nil {
		h.fail(c, h.refuseUnread(c, err))
		return
	}
	req, err := backup.ParsePersistRequest(backup.PersistRequest{
		Tenant:     tenantOf(c),
		PublicKey:  c.GetHeader("Public-Key"),
		SignedHash: c.GetHeader("Signed-Hash"),
		Challenge:  c.GetHeader("Challenge"),
		Network:    c.Query("network"),
		Label:      c.Query("label"),
		ChannelID:  c.Query("channelId"),
		Address:    addressOf(c),
	})
	if err != nil {
		h.fail(c, h.refuseUnread(c, err))
		return
	}
	body, release, err := h.readUpload(c, h.deps.MaxBodyBytes)
	if err != nil {
		h.fail(c, err)
		return
	}
	defer release()
	res, err := h.deps.Backup.Persist(c.Request.Context(), req, body)
	if err != nil {
		h.fail(c, err)
		return
	}
	if res.Stored {
		c.Set(ctxStored, true)
	}
	if res.Waited > 0 {
		c.Set(ctxWaited, res.Waited)
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
	start := time.Now()
	req, err := backup.ParseRetrieve(tenantOf(c), nodeOf(c), c.Query("network"), c.Query("label"), c.Query("channelId"), c.Query("version"))
	if err != nil {
		h.fail(c, err)
		return
	}
	buf, release, err := h.takeSendBuffer(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	defer release()
	d, err := h.deps.Backup.Retrieve(c.Request.Context(), req, buf)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.send(c, d, start)
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

// persistChunk is a persist body's first buffer; it then doubles as bytes
// arrive, each growth taken from the in-flight budget, so an upload holds at
// most about twice what it has sent.
const persistChunk = 16 << 10

// readUpload reads a persist (or VSS) body of at most limit bytes, taking its
// memory from the in-flight budget as the bytes arrive: a client that
// declares a large body and trickles it holds only what it has sent, so a few
// slow uploads cannot starve everyone else. When the budget stays full for
// InFlightWait the request gets 503. release returns the memory.
func (h *handlers) readUpload(c *gin.Context, limit int64) (body []byte, release func(), err error) {
	declared := c.Request.ContentLength
	if declared > limit {
		return nil, nil, h.refuseUnread(c, backup.TooLarge("body of %d bytes is over the limit of %d bytes", declared, limit))
	}
	var held int64
	release = func() {
		if held > 0 {
			h.inFlight.Release(held)
		}
	}
	// A declared length is the final size; without one, read up to the limit
	// and then probe for one byte more (below). The budget never gives one
	// body more than the limit: with IN_FLIGHT_BYTES == MAX_BODY_BYTES a
	// limit+1 reservation could never be met.
	want := declared
	if want < 0 {
		want = limit
	}
	var buf []byte
	for {
		if len(buf) == cap(buf) && int64(len(buf)) < want {
			grow := min(max(int64(cap(buf)), persistChunk), want-int64(len(buf)))
			if err := h.takeBudget(c, grow); err != nil {
				release()
				return nil, nil, h.refuseUnread(c, err)
			}
			held += grow
			buf = append(make([]byte, 0, int64(cap(buf))+grow), buf...)
		}
		if int64(len(buf)) >= want {
			break
		}
		n, err := c.Request.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			release()
			return nil, nil, backup.Errorf(backup.EINVALID, "could not read body")
		}
	}
	if declared >= 0 && int64(len(buf)) < declared {
		release()
		return nil, nil, backup.Errorf(backup.EINVALID, "body shorter than its Content-Length")
	}
	if declared < 0 && int64(len(buf)) == limit {
		// A body without a length that filled the limit: one more byte
		// makes it too large. The probe is a local byte, not budget.
		var probe [1]byte
		n, err := io.ReadFull(c.Request.Body, probe[:])
		if n > 0 {
			release()
			return nil, nil, h.refuseUnread(c, backup.TooLarge("body is over the limit of %d bytes", limit))
		}
		if err != io.EOF {
			release()
			return nil, nil, backup.Errorf(backup.EINVALID, "could not read body")
		}
	}
	return buf, release, nil
}

// takeBudget waits up to InFlightWait for n bytes of the in-flight budget;
// an InFlightWait of 0 takes them only if they are free now.
func (h *handlers) takeBudget(c *gin.Context, n int64) error {
	busy := &backup.Error{Code: backup.EUNAVAILABLE, Message: "server busy: too many uploads in flight, retry shortly", RetryAfter: time.Second}
	if h.deps.InFlightWait <= 0 {
		// Acquire on an already expired context fails even when the
		// budget is free, so "no wait" must not go through it.
		if !h.inFlight.TryAcquire(n) {
			return busy
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.deps.InFlightWait)
	defer cancel()
	if err := h.inFlight.Acquire(ctx, n); err != nil {
		return busy
	}
	return nil
}

// refuseUnread makes a refusal of a body that was not read whole leave
// promptly. net/http would otherwise first read the rest of the body (a slow
// client's, for minutes) before sending the answer. Closing at once instead
// loses the answer: the client is still sending, and the close that meets its
// unread bytes is a TCP reset, which discards the reply on its way. So the
// rest of the body is drained for a moment (at most drainBytes, for at most
// drainWait, into nothing), which lets a client that sends at a normal pace
// finish and read its 413 or 503, and then the connection closes after the
// reply. Nothing drained is held in memory.
func (h *handlers) refuseUnread(c *gin.Context, err error) error {
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Now().Add(drainWait))
	_, _ = io.CopyN(io.Discard, c.Request.Body, drainBytes)
	_ = rc.SetReadDeadline(time.Now())
	c.Header("Connection", "close")
	return err
}

// How much of a refused body is drained before the connection closes.
const (
	drainBytes = 1 << 20
	drainWait  = 250 * time.Millisecond
)

// readBody reads a small body of at most limit bytes (the auth requests').
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	r := c.Request
	if r.ContentLength > limit {
		return nil, backup.TooLarge("body of %d bytes is over the limit of %d bytes", r.ContentLength, limit)
	}
	buf, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, backup.TooLarge("body is over the limit of %d bytes", limit)
	}
	if err != nil || (r.ContentLength >= 0 && int64(len(buf)) < r.ContentLength) {
		return nil, backup.Errorf(backup.EINVALID, "could not read body")
	}
	return buf, nil
}

// requireMediaType refuses (415) a request whose Content-Type is set to
// anything but want; none at all is accepted.
func requireMediaType(c *gin.Context, want string) error {
	ct := c.GetHeader("Content-Type")
	if ct == "" {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != want {
		return &statusError{http.StatusUnsupportedMediaType, "Content-Type must be " + want}
	}
	return nil
}

// readJSON decodes a small JSON object body into dst. A Content-Type other
// than JSON is refused; none at all is accepted, as a lenient client may
// send none.
func readJSON(c *gin.Context, dst any) error {
	if err := requireMediaType(c, "application/json"); err != nil {
		return err
	}
	raw, err := readBody(c, maxJSONBody)
	if err != nil {
		var e *backup.Error
		if errors.As(err, &e) && e.Code == backup.ETOOLARGE {
			return backup.TooLarge("JSON body is over the limit of %d bytes", maxJSONBody)
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
// disagree on which one wins, and a signature must cover one meaning. Keys
// are compared as encoding/json matches them to fields, case-insensitively
// (so "timestamp" and "Timestamp", or "k" and the Kelvin sign, are one).
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
		folded := foldKey(key)
		if seen[folded] {
			return backup.Errorf(backup.EINVALID, "field %q appears twice", truncateKey(key))
		}
		seen[folded] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return invalid
		}
	}
	return nil
}

// foldKey maps every key encoding/json would match to one field to the same
// string: each rune becomes the smallest of its Unicode simple case folding
// orbit, so foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b).
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		for {
			next := unicode.SimpleFold(r)
			if next <= r {
				return next
			}
			r = next
		}
	}, k)
}

func truncateKey(k string) string {
	if len(k) > 32 {
		return k[:32] + "..."
	}
	return k
}
