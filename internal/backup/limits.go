package backup

import (
	"fmt"
	"net/netip"
	"time"
)

// Limits are the limits in force for one tenant: its own where it has them,
// else the server's. A rate of 0 is no limit (RATE_LIMITS=off).
type Limits struct {
	QuotaBytes   int64 // sum of the latest versions' sizes, per node
	QuotaObjects int64 // objects per node
	QuotaUploads int64 // uploads per node remembered for the replay rule

	// PaceMaxWait is how long a proven persist over its node's allowance
	// waits for its turn before it is refused; 0: refused at once.
	PaceMaxWait time.Duration

	AddressPerMinute          int64 // login requests and failed signatures or tokens, per client address
	NodePerMinute             int64 // persists and reads that proved the node's key, per node
	NewNodesPerAddressPerHour int64 // first persists of new node keys, per client address
}

// Rate windows, in seconds.
const (
	MinuteWindow = 60
	HourWindow   = 3600
)

// Rate counter keys. A client address is counted per tenant: each app's users
// have their own allowance. The first field names the limit: rate_take
// (db/functions/rate_take.sql) raises that limit's SQLSTATE from it.
func RateKeyAddress(t TenantID, addr string) string { return fmt.Sprintf("addr:%d:%s", t, addr) }
func RateKeyNode(t TenantID, n NodeKey) string      { return fmt.Sprintf("node:%d:%s", t, n) }
func RateKeyNewNode(t TenantID, addr string) string { return fmt.Sprintf("new:%d:%s", t, addr) }

// WriteLimits are the limits a write enforces in its own transaction.
type WriteLimits struct {
	NodeRateKey     string
	NodePerMinute   int64
	NewNodeKey      string
	NewNodesPerHour int64
	PaceMaxWait     time.Duration
	QuotaBytes      int64
	QuotaObjects    int64
	QuotaUploads    int64
}

// writeLimits are the limits of a persist by node from addr.
func (t *Tenant) writeLimits(node NodeKey, addr string) WriteLimits {
	return WriteLimits{
		NodeRateKey:     RateKeyNode(t.ID, node),
		NodePerMinute:   t.Limits.NodePerMinute,
		NewNodeKey:      RateKeyNewNode(t.ID, addr),
		NewNodesPerHour: t.Limits.NewNodesPerAddressPerHour,
		QuotaBytes:      t.Limits.QuotaBytes,
		QuotaObjects:    t.Limits.QuotaObjects,
		QuotaUploads:    t.Limits.QuotaUploads,
		PaceMaxWait:     t.Limits.PaceMaxWait,
	}
}

// ReadLimit is the limit a read counts in its own query.
type ReadLimit struct {
	NodeRateKey   string
	NodePerMinute int64 // 0: not counted
}

// readLimit is the limit of a proven read by node.
func (t *Tenant) readLimit(node NodeKey) ReadLimit {
	if t.Limits.NodePerMinute <= 0 {
		return ReadLimit{}
	}
	return ReadLimit{NodeRateKey: RateKeyNode(t.ID, node), NodePerMinute: t.Limits.NodePerMinute}
}

// RateLimited is the refusal of a request over the rate limit kind. A
// 429's body names the limit ("limit"): address, node or new_nodes.
func RateLimited(kind Refusal, retryAfter time.Duration) *Error {
	name := map[Refusal]string{RefusedRateAddress: "address", RefusedRateNode: "node", RefusedNewNodes: "new_nodes"}[kind]
	return &Error{Code: ERATELIMITED, Message: "rate limit exceeded, retry later", RetryAfter: retryAfter,
		Details: map[string]any{"limit": name}, Refusal: kind}
}

// ClientAddress is the form of a client's IP address that rate limits count:
// an IPv4 address, or the /64 of an IPv6 one, since a single subscriber gets
// a whole /64 and could otherwise rotate through it.
func ClientAddress(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
