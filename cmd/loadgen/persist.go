package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/lnsig"
)

// persistSender sends pre-signed persists. internal/client's Persist hashes
// and signs each body and checks each reply's signature, ~0.3 ms of CPU per
// request on the two CPUs the server also needs; this sends what presign
// prepared and checks the server's signature on a sample of the replies.
type persistSender struct {
	http      *http.Client
	serverPub *btcec.PublicKey
}

// verifyEvery: one reply in verifyEvery has its signature checked, enough to
// catch a server that signs wrongly without costing the run a CPU.
const verifyEvery = 64

// send makes one persist and checks that it was accepted.
func (s *persistSender) send(ctx context.Context, r *persistRequest, verify bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return err
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("persist: status %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	var reply struct {
		Success   bool   `json:"success"`
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil || !reply.Success {
		return fmt.Errorf("persist: unexpected reply %q", raw)
	}
	if verify {
		if err := lnsig.VerifyBackup(s.serverPub, r.challenge, reply.Signature); err != nil {
			return fmt.Errorf("persist: server signature: %w", err)
		}
	}
	return nil
}

// sendAll sends reqs with concurrency workers and stops at the first
// failure: for setting up data, not for measuring.
func (s *persistSender) sendAll(ctx context.Context, reqs []persistRequest, concurrency int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range reqs {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				if err := s.send(ctx, &reqs[i], i%verifyEvery == 0); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
