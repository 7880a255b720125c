// Package client is a Go client of the v1 backup protocol that behaves like
// the react-native-ldk apps (Kotlin on Android, Swift on iOS): same URLs,
// headers, signatures, encryption, timestamp formats and retry policy. The
// end-to-end tests and the load generator use it, so one Client is safe for
// concurrent use by many goroutines.
package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/lnsig"
)

var (
	// ErrNotFound: retrieve answered 404 (nothing stored under that key).
	ErrNotFound = errors.New("client: backup not found")
	// ErrServerSignature: a persist reply's signature does not recover the
	// pinned server key. The apps treat this as a possible man in the middle.
	ErrServerSignature = errors.New("client: server signature does not match the pinned server key")
)

// StatusError is any non-200 answer other than a retrieve's 404.
type StatusError struct {
	Status  int
	Message string // the reply's "error" field, or its start when not JSON
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("backup server: status %d", e.Status)
	}
	return fmt.Sprintf("backup server: status %d: %s", e.Status, e.Message)
}

// Config describes one wallet (node) talking to one server.
type Config struct {
	BaseURL      string       // e.g. "http://127.0.0.1:3003"; requests go to BaseURL+"/v1/<method>"
	Network      string       // bitcoin|testnet|regtest|signet
	NodeSecret   []byte       // 32-byte node secret: signs, and is the AES-256-GCM key (as the apps do)
	ServerPubKey string       // 66 hex characters, pinned: every persist reply must be signed by it
	HTTPClient   *http.Client // nil: a default client with a timeout
	// Timestamps picks the app to imitate: its timestamp format, and the two
	// small differences that go with it (the Content-Type on retrieve GETs;
	// iOS's Restore skipping ping.bin).
	Timestamps  TimestampStyle
	MaxAttempts int              // persist attempts (the apps make 10); <=0 means 1
	Now         func() time.Time // nil: time.Now
}

// defaultTimeout bounds a request when the caller gives no HTTPClient; a
// large channel manager over a slow link still fits.
const defaultTimeout = 2 * time.Minute

// Client is safe for concurrent use.
type Client struct {
	baseURL    string // BaseURL + "/v1", no trailing slash
	network    string
	secret     []byte
	key        *btcec.PrivateKey
	pubHex     string
	serverPub  *btcec.PublicKey
	http       *http.Client
	timestamps TimestampStyle
	attempts   int
	now        func() time.Time
	tokens     tokenCache
}

// New validates cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(cfg.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: BaseURL %q must not carry a query or fragment", cfg.BaseURL)
	}
	switch cfg.Network {
	case "bitcoin", "testnet", "regtest", "signet":
	default:
		// The iOS app refuses an unknown network at setup too.
		return nil, fmt.Errorf("client: unknown network %q", cfg.Network)
	}
	if len(cfg.NodeSecret) != 32 {
		return nil, fmt.Errorf("client: NodeSecret is %d bytes, want 32", len(cfg.NodeSecret))
	}
	// PrivKeyFromBytes reduces modulo the group order silently; a secret out
	// of range is a configuration mistake, not a key.
	var scalar btcec.ModNScalar
	if overflow := scalar.SetByteSlice(cfg.NodeSecret); overflow || scalar.IsZero() {
		return nil, errors.New("client: NodeSecret is not a valid secp256k1 private key")
	}
	if len(cfg.ServerPubKey) != 66 {
		return nil, fmt.Errorf("client: ServerPubKey is %d characters, want 66 hex", len(cfg.ServerPubKey))
	}
	rawServer, err := hex.DecodeString(cfg.ServerPubKey)
	if err != nil {
		return nil, fmt.Errorf("client: ServerPubKey is not hex: %w", err)
	}
	serverPub, err := btcec.ParsePubKey(rawServer)
	if err != nil {
		return nil, fmt.Errorf("client: ServerPubKey: %w", err)
	}
	if cfg.Timestamps != AndroidTimestamps && cfg.Timestamps != IOSTimestamps {
		return nil, fmt.Errorf("client: unknown timestamp style %d", int(cfg.Timestamps))
	}

	secret := append([]byte(nil), cfg.NodeSecret...) // the caller may reuse its slice
	key, _ := btcec.PrivKeyFromBytes(secret)
	c := &Client{
		baseURL:    base + "/v1",
		network:    cfg.Network,
		secret:     secret,
		key:        key,
		pubHex:     lnsig.PublicKeyHex(key),
		serverPub:  serverPub,
		http:       cfg.HTTPClient,
		timestamps: cfg.Timestamps,
		attempts:   max(cfg.MaxAttempts, 1),
		now:        cfg.Now,
		tokens:     newTokenCache(),
	}
	if c.http == nil {
		// http.DefaultTransport pools connections; load generators running many
		// clients should pass one shared, tuned HTTPClient instead.
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// PublicKeyHex is the node's compressed public key in lowercase hex, as sent
// in the Public-Key header.
func (c *Client) PublicKeyHex() string { return c.pubHex }

// endpoint builds BaseURL/v1/<method>?network=N&label=L&channelId=C with the
// parameters in the apps' order; empty label or channelId are omitted.
// Escaping changes nothing for valid values and keeps test inputs intact.
func (c *Client) endpoint(method, label, channelID string) string {
	var b strings.Builder
	b.WriteString(c.baseURL)
	b.WriteString("/")
	b.WriteString(method)
	b.WriteString("?network=")
	b.WriteString(url.QueryEscape(c.network))
	if label != "" {
		b.WriteString("&label=")
		b.WriteString(url.QueryEscape(label))
	}
	if channelID != "" {
		b.WriteString("&channelId=")
		b.WriteString(url.QueryEscape(channelID))
	}
	return b.String()
}

// sign signs a protocol payload with the node key.
func (c *Client) sign(payload string) string {
	return lnsig.SignBackup(c.key, payload)
}

// Limits on reply bodies other than retrieve's, which is the caller's data.
const (
	maxJSONReply  = 1 << 20
	maxErrorReply = 64 << 10
)

// readJSON decodes a 200 reply into v.
func readJSON(resp *http.Response, v any) error {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONReply+1))
	if err != nil {
		return err
	}
	if len(raw) > maxJSONReply {
		return fmt.Errorf("client: reply larger than %d bytes", maxJSONReply)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("client: malformed reply %q: %w", truncate(raw), err)
	}
	return nil
}

// statusError turns a non-200 reply into a *StatusError.
func statusError(resp *http.Response) *StatusError {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorReply))
	e := &StatusError{Status: resp.StatusCode}
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != "" {
		e.Message = body.Error
	} else {
		e.Message = truncate(raw)
	}
	return e
}

func truncate(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// closeBody drains a little so the connection can be reused, then closes.
func closeBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorReply))
	_ = resp.Body.Close()
}

// readContentType is what each app puts on its GET requests (they have no
// body, but a server must not choke on the header).
func (c *Client) readContentType(method string) string {
	if method == "retrieve" && c.timestamps == AndroidTimestamps {
		return "application/octet-stream"
	}
	return "application/json"
}

// get performs an authenticated read.
func (c *Client) get(ctx context.Context, method, target string) (*http.Response, error) {
	token, err := c.Token(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", c.readContentType(method))
	req.Header.Set("Authorization", token) // bare, as the apps send it
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", method, err)
	}
	return resp, nil
}
