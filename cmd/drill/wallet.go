package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/client"
	"ldkbackup/internal/lnsig"
)

// The drills speak the protocol with hand-built requests that carry the
// same headers and signatures as the apps' (internal/client), because a
// drill must see every single attempt: its status, its body, how long it
// took. internal/client retries and folds replies into errors, as an app
// does.

// network is where every drill object lives.
const network = "regtest"

// requestTimeout bounds every drill request: an answer that takes longer
// counts as a hang.
const requestTimeout = 15 * time.Second

// wallet is one node key talking to the server.
type wallet struct {
	secret []byte
	key    *btcec.PrivateKey
	pubHex string
	// forwardedFor, when set, is sent as X-Forwarded-For: the client address
	// a trusted load balancer would name (the replica drill gives each of
	// its checks an address of its own).
	forwardedFor string
	token        string
}

func newWallet() (*wallet, error) {
	for {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		var scalar btcec.ModNScalar
		if overflow := scalar.SetByteSlice(secret); overflow || scalar.IsZero() {
			continue // out of range for secp256k1: astronomically rare
		}
		key, _ := btcec.PrivKeyFromBytes(secret)
		return &wallet{secret: secret, key: key, pubHex: lnsig.PublicKeyHex(key)}, nil
	}
}

// object names one object of a wallet.
type object struct {
	label     string
	channelID string // 64 hex for channel_monitor, else ""
}

func monitor(i int) object {
	sum := sha256.Sum256([]byte("drill channel " + strconv.Itoa(i)))
	return object{label: "channel_monitor", channelID: hex.EncodeToString(sum[:])}
}

func (o object) String() string {
	if o.channelID == "" {
		return o.label
	}
	return o.label + "/" + o.channelID[:8]
}

// reply is the outcome of one request.
type reply struct {
	status  int    // 0 when there was no HTTP reply
	body    []byte // the reply body (persist and error replies are small)
	err     error  // no reply: connection refused or reset, timeout, ...
	latency time.Duration
	header  http.Header
}

// jsonError says whether the body is {"error": "<something>"}, the shape
// every refusal must have.
func (r reply) jsonError() bool {
	var body struct {
		Error *string `json:"error"`
	}
	return json.Unmarshal(r.body, &body) == nil && body.Error != nil && *body.Error != ""
}

func (r reply) String() string {
	if r.err != nil {
		return fmt.Sprintf("no reply after %s: %v", r.latency.Round(time.Millisecond), r.err)
	}
	return fmt.Sprintf("%d after %s: %.120q", r.status, r.latency.Round(time.Millisecond), r.body)
}

// do sends req and reads the whole reply.
func do(hc *http.Client, req *http.Request) reply {
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return reply{err: err, latency: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, body: body, err: err, latency: time.Since(start), header: resp.Header}
	if err != nil {
		r.status = 0 // a reply cut off is no reply
	}
	return r
}

// upload is one persist body: its bytes come from open, so a large body
// can be streamed (and paced) instead of held.
type upload struct {
	obj  object
	size int64
	sum  [32]byte
	open func() io.Reader
}

func bytesUpload(obj object, body []byte) upload {
	return upload{obj: obj, size: int64(len(body)), sum: sha256.Sum256(body), open: func() io.Reader { return bytes.NewReader(body) }}
}

// persistResult is a persist's reply read as an app reads it.
type persistResult struct {
	reply
	acked   bool  // 200, "success": true, and signed by the pinned server key
	version int64 // the reply's "version"
}

// persist sends u as the apps do: Signed-Hash over the body's hex SHA-256,
// a Challenge of SHA-256(pubkey + ms timestamp), and checks the server's
// signature over that challenge.
func (w *wallet) persist(ctx context.Context, hc *http.Client, baseURL string, serverPub *btcec.PublicKey, u upload) persistResult {
	challenge := w.persistChallenge()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, objectURL(baseURL, "persist", u.obj), u.open())
	if err != nil {
		return persistResult{reply: reply{err: err}}
	}
	req.ContentLength = u.size
	for k, v := range w.persistHeaders(u.sum, challenge) {
		req.Header.Set(k, v)
	}
	res := persistResult{reply: do(hc, req)}
	if res.status != http.StatusOK {
		return res
	}
	var body struct {
		Success   bool   `json:"success"`
		Signature string `json:"signature"`
		Version   int64  `json:"version"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil || !body.Success {
		res.err = fmt.Errorf("persist: 200 with an unexpected body %.120q", res.body)
		return res
	}
	if err := lnsig.VerifyBackup(serverPub, challenge, body.Signature); err != nil {
		res.err = fmt.Errorf("persist: reply not signed by the server key: %w", err)
		return res
	}
	res.acked, res.version = true, body.Version
	return res
}

func (w *wallet) persistChallenge() string {
	return client.PersistChallenge(w.pubHex, client.AndroidTimestamps, time.Now())
}

// persistHeaders are the headers of a persist of a body whose SHA-256 is sum.
func (w *wallet) persistHeaders(sum [32]byte, challenge string) map[string]string {
	h := client.PersistHeaders(w.key, sum, challenge)
	if w.forwardedFor != "" {
		h["X-Forwarded-For"] = w.forwardedFor
	}
	return h
}

// requestChallenge is auth/challenge, as the Android app sends it.
func (w *wallet) requestChallenge(ctx context.Context, hc *http.Client, baseURL string) (string, reply) {
	ts := client.AndroidTimestamps.Format(time.Now())
	body := fmt.Sprintf(`{"timestamp":%s,"signature":%q}`, ts, lnsig.SignBackup(w.key, ts))
	r := w.postJSON(ctx, hc, baseURL+"/v1/auth/challenge", body)
	var out struct {
		Challenge string `json:"challenge"`
	}
	if r.status == http.StatusOK && json.Unmarshal(r.body, &out) == nil {
		return out.Challenge, r
	}
	return "", r
}

// answerChallenge is auth/response; the bearer token when it succeeds.
func (w *wallet) answerChallenge(ctx context.Context, hc *http.Client, baseURL, challenge string) (string, reply) {
	body := fmt.Sprintf(`{"signature":%q}`, lnsig.SignBackup(w.key, challenge))
	r := w.postJSON(ctx, hc, baseURL+"/v1/auth/response", body)
	var out struct {
		Bearer string `json:"bearer"`
	}
	if r.status == http.StatusOK && json.Unmarshal(r.body, &out) == nil {
		return out.Bearer, r
	}
	return "", r
}

// login gets a bearer token (challenge and response at the same server) and
// keeps it for later reads; the first failed reply when it cannot.
func (w *wallet) login(ctx context.Context, hc *http.Client, baseURL string) (reply, error) {
	challenge, r := w.requestChallenge(ctx, hc, baseURL)
	if challenge == "" {
		return r, fmt.Errorf("auth/challenge: %s", r)
	}
	token, r := w.answerChallenge(ctx, hc, baseURL, challenge)
	if token == "" {
		return r, fmt.Errorf("auth/response: %s", r)
	}
	w.token = token
	return r, nil
}

func (w *wallet) postJSON(ctx context.Context, hc *http.Client, target, body string) reply {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"?network="+network, bytes.NewReader([]byte(body)))
	if err != nil {
		return reply{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Public-Key", w.pubHex)
	if w.forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", w.forwardedFor)
	}
	return do(hc, req)
}

// retrieve reads an object's latest version (version 0) or version n with
// the wallet's token.
func (w *wallet) retrieve(ctx context.Context, hc *http.Client, baseURL string, obj object, version int64) reply {
	target := objectURL(baseURL, "retrieve", obj)
	if version > 0 {
		target += "&version=" + strconv.FormatInt(version, 10)
	}
	return w.get(ctx, hc, target, w.token)
}

// list is GET /v1/list with token.
func (w *wallet) list(ctx context.Context, hc *http.Client, baseURL, token string) reply {
	return w.get(ctx, hc, baseURL+"/v1/list?network="+network+"&fileGroup=all", token)
}

func (w *wallet) get(ctx context.Context, hc *http.Client, target, token string) reply {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return reply{err: err}
	}
	if token == "" {
		return reply{err: errors.New("no token: log in first")}
	}
	req.Header.Set("Authorization", token)
	if w.forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", w.forwardedFor)
	}
	return do(hc, req)
}

// objectURL is <base>/v1/<method>?network=N&label=L[&channelId=C].
func objectURL(baseURL, method string, obj object) string {
	q := url.Values{"network": {network}, "label": {obj.label}}
	if obj.channelID != "" {
		q.Set("channelId", obj.channelID)
	}
	return baseURL + "/v1/" + method + "?" + q.Encode()
}

// newHTTPClient is a client whose every request gives up after
// requestTimeout, with enough idle connections for the drills' concurrency.
func newHTTPClient(conns int) *http.Client {
	return newHTTPClientTimeout(conns, requestTimeout)
}

func newHTTPClientTimeout(conns int, timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns
	t.MaxIdleConnsPerHost = conns
	return &http.Client{Timeout: timeout, Transport: t}
}

// randomBytes returns n random bytes: ciphertext looks like this, and no
// two bodies are ever the same (the server refuses replays).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
