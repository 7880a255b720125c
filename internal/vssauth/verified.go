package vssauth

import "sync"

// verifiedHeaders remembers signature headers whose signature verified, so
// that the same bytes are not verified again: vss-client signs
// deterministically with a time in whole seconds, so every request a wallet
// makes within one second (a restore's gets, concurrent writes, retries)
// carries the identical header, and verifying it is most of a small
// request's CPU. A hit stands for exactly the bytes that verified; the
// window and the replay guard are still checked on every request.
//
// Two generations of at most max headers each bound its memory: when the
// current one is full it becomes the previous one, and the previous one is
// dropped.
type verifiedHeaders struct {
	max int

	mu            sync.Mutex
	current, prev map[string]SignedHeader
}

func newVerifiedHeaders(max int) *verifiedHeaders {
	return &verifiedHeaders{max: max, current: map[string]SignedHeader{}}
}

func (c *verifiedHeaders) get(header string) (SignedHeader, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sh, ok := c.current[header]; ok {
		return sh, true
	}
	sh, ok := c.prev[header]
	return sh, ok
}

func (c *verifiedHeaders) add(header string, sh SignedHeader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.current) >= c.max {
		c.prev, c.current = c.current, make(map[string]SignedHeader, c.max)
	}
	c.current[header] = sh
}
