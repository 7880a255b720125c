package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// tokenCache holds the bearer token shared by every goroutine using a Client.
type tokenCache struct {
	mu        sync.Mutex
	bearer    string
	expiresMs int64
	// login is a one-slot semaphore: when the token runs out, one goroutine
	// logs in and the others wait for its token instead of each making a
	// challenge round trip. A channel (not a mutex) so waiting honours ctx.
	login chan struct{}
}

func newTokenCache() tokenCache {
	return tokenCache{login: make(chan struct{}, 1)}
}

// cached returns the token while it is unexpired, with the apps' rule
// (expires > now, no margin).
func (t *tokenCache) cached(nowMs int64) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bearer != "" && t.expiresMs > nowMs {
		return t.bearer, true
	}
	return "", false
}

func (t *tokenCache) store(bearer string, expiresMs int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bearer, t.expiresMs = bearer, expiresMs
}

// Token returns a bearer token for reads: the cached one until its "expires"
// (ms since epoch), else a new one from auth/challenge and auth/response.
func (c *Client) Token(ctx context.Context) (string, error) {
	if tok, ok := c.tokens.cached(c.now().UnixMilli()); ok {
		return tok, nil
	}
	select {
	case c.tokens.login <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-c.tokens.login }()
	// Another goroutine may have logged in while this one waited.
	if tok, ok := c.tokens.cached(c.now().UnixMilli()); ok {
		return tok, nil
	}
	challenge, err := c.fetchChallenge(ctx)
	if err != nil {
		return "", err
	}
	bearer, expires, err := c.fetchBearer(ctx, challenge)
	if err != nil {
		return "", err
	}
	c.tokens.store(bearer, expires)
	return bearer, nil
}

// challengeRequest is the auth/challenge body. Timestamp is a json.Number
// (Android: a JSON number of ms) or a string (iOS: seconds with a fraction);
// either way the signed text is exactly what appears in the JSON.
type challengeRequest struct {
	Timestamp any    `json:"timestamp"`
	Signature string `json:"signature"`
}

func (c *Client) challengeBody() ([]byte, error) {
	ts := c.timestamps.Format(c.now())
	body := challengeRequest{Signature: c.sign(ts)}
	if c.timestamps == IOSTimestamps {
		body.Timestamp = ts
	} else {
		body.Timestamp = json.Number(ts)
	}
	return json.Marshal(body)
}

func (c *Client) fetchChallenge(ctx context.Context) (string, error) {
	body, err := c.challengeBody()
	if err != nil {
		return "", err
	}
	var reply struct {
		Challenge string `json:"challenge"`
	}
	if err := c.postJSON(ctx, "auth/challenge", body, &reply); err != nil {
		return "", err
	}
	if reply.Challenge == "" {
		return "", errors.New("client: auth/challenge: reply has no challenge")
	}
	return reply.Challenge, nil
}

func (c *Client) fetchBearer(ctx context.Context, challenge string) (string, int64, error) {
	body, err := json.Marshal(struct {
		Signature string `json:"signature"`
	}{c.sign(challenge)})
	if err != nil {
		return "", 0, err
	}
	// expires must be a JSON integer: Kotlin reads it with getLong and Swift
	// decodes an Int, so a float here would break the iOS app.
	var reply struct {
		Bearer  string `json:"bearer"`
		Expires *int64 `json:"expires"`
	}
	if err := c.postJSON(ctx, "auth/response", body, &reply); err != nil {
		return "", 0, err
	}
	if reply.Bearer == "" || reply.Expires == nil {
		return "", 0, errors.New("client: auth/response: reply lacks bearer or expires")
	}
	return reply.Bearer, *reply.Expires, nil
}

// postJSON sends an auth request with the node's Public-Key and decodes a 200
// reply into out; other statuses become *StatusError. Both apps put
// ?network=N on these URLs too, so this does as well.
func (c *Client) postJSON(ctx context.Context, method string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(method, "", ""), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Public-Key", c.pubHex)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s: %w", method, err)
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	if err := readJSON(resp, out); err != nil {
		return fmt.Errorf("client: %s: %w", method, err)
	}
	return nil
}
