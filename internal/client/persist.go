package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/lnsig"
)

// PersistResult describes an accepted persist.
type PersistResult struct {
	Version  int64 // the reply's optional "version" (an extension), 0 if absent
	Attempts int   // requests made, counting the successful one
}

// Persist encrypts plaintext and stores it under label (and channelID for
// channel_monitor; empty omits the parameter). Like the apps it retries
// failed attempts, encrypting afresh each time so the server never sees the
// same bytes twice for one plaintext.
func (c *Client) Persist(ctx context.Context, label, channelID string, plaintext []byte) (PersistResult, error) {
	return c.persist(ctx, label, channelID, func() ([]byte, error) {
		return Encrypt(c.secret, plaintext)
	})
}

// PersistEncrypted stores exactly body, on every attempt: for replay and
// idempotency tests that need byte-identical uploads.
func (c *Client) PersistEncrypted(ctx context.Context, label, channelID string, body []byte) (PersistResult, error) {
	return c.persist(ctx, label, channelID, func() ([]byte, error) { return body, nil })
}

// Backoff between persist attempts: linear like the apps (Android sleeps
// n ms, iOS n s; this sits between), capped so a long run of 429s or 5xxs
// stays short.
const (
	backoffStep = 100 * time.Millisecond
	backoffMax  = 2 * time.Second
)

func backoff(attempt int) time.Duration {
	return min(time.Duration(attempt)*backoffStep, backoffMax)
}

func (c *Client) persist(ctx context.Context, label, channelID string, makeBody func() ([]byte, error)) (PersistResult, error) {
	target := c.endpoint("persist", label, channelID)
	for attempt := 1; ; attempt++ {
		body, err := makeBody()
		if err != nil {
			return PersistResult{Attempts: attempt - 1}, err
		}
		res, retry, err := c.persistOnce(ctx, target, body)
		if err == nil {
			res.Attempts = attempt
			return res, nil
		}
		if !retry || attempt >= c.attempts || ctx.Err() != nil {
			return PersistResult{Attempts: attempt}, err
		}
		t := time.NewTimer(backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return PersistResult{Attempts: attempt}, errors.Join(ctx.Err(), err)
		}
	}
}

// persistOnce makes one attempt. retry reports whether the failure is
// transient: transport errors, 5xx and 429. Other 4xx, a malformed reply and
// a bad server signature are final.
func (c *Client) persistOnce(ctx context.Context, target string, body []byte) (res PersistResult, retry bool, err error) {
	challenge := PersistChallenge(c.pubHex, c.timestamps, c.now())
	sum := sha256.Sum256(body)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return res, false, err
	}
	for k, v := range PersistHeaders(c.key, sum, challenge) {
		req.Header.Set(k, v)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return res, true, fmt.Errorf("client: persist: %w", err)
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		se := statusError(resp)
		return res, se.Status >= 500 || se.Status == http.StatusTooManyRequests, se
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONReply))
	if err != nil {
		return res, true, fmt.Errorf("client: persist: reading reply: %w", err)
	}
	// "success" is required: the Swift app decodes it as a non-optional Bool.
	var reply struct {
		Success   *bool  `json:"success"`
		Signature string `json:"signature"`
		Version   *int64 `json:"version"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return res, false, fmt.Errorf("client: persist: malformed reply %q: %w", truncate(raw), err)
	}
	if reply.Success == nil || !*reply.Success || reply.Signature == "" {
		return res, false, fmt.Errorf("client: persist: reply lacks success or signature: %q", truncate(raw))
	}
	if err := lnsig.VerifyBackup(c.serverPub, challenge, reply.Signature); err != nil {
		return res, false, fmt.Errorf("%w: %v", ErrServerSignature, err)
	}
	if reply.Version != nil {
		res.Version = *reply.Version
	}
	return res, false, nil
}

// PersistHeaders are the headers the apps send with a persist of a body
// whose SHA-256 is sum: the node's public key, its signature over the hash
// and the challenge the server signs in its reply. Every sender of persists
// (this client, the load benchmark, the drills, the tests) builds them here.
func PersistHeaders(key *btcec.PrivateKey, sum [sha256.Size]byte, challenge string) map[string]string {
	return map[string]string{
		"Content-Type": "application/octet-stream",
		"Public-Key":   lnsig.PublicKeyHex(key),
		"Signed-Hash":  lnsig.SignBackup(key, hex.EncodeToString(sum[:])),
		"Challenge":    challenge,
	}
}
