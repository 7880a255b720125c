// Package backup is the domain of the server: what an object key, a node, a
// network and a label are, the rules that make them valid, and the service
// that persists, lists and retrieves a node's objects.
package backup

import (
	"encoding/hex"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
)

// TenantID identifies the wallet app (brand) a row belongs to.
type TenantID int64

// DefaultTenant answers at /v1 with the key pair from the environment.
const DefaultTenant TenantID = 1

// DefaultTenantSlug is the default tenant's slug.
const DefaultTenantSlug = "default"

// Tenant is what a request needs of the wallet app it is addressed to.
type Tenant struct {
	ID   TenantID
	Slug string
	// ServerKey signs persist replies: the app pins its public key.
	ServerKey *btcec.PrivateKey
	Labels    LabelPolicy
	Limits    Limits
	VSSAuth   VSSAuth
}

// NodeKey is a node's 33-byte compressed secp256k1 public key.
type NodeKey [33]byte

// ParseNodeKey parses a Public-Key header: 66 hex characters of a compressed
// key, in either case.
func ParseNodeKey(s string) (NodeKey, error) {
	var k NodeKey
	if s == "" {
		return k, Errorf(EINVALID, "missing Public-Key header")
	}
	if len(s) != 66 {
		return k, Errorf(EINVALID, "Public-Key must be 66 hex characters")
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, Errorf(EINVALID, "Public-Key must be 66 hex characters")
	}
	if k[0] != 0x02 && k[0] != 0x03 {
		return k, Errorf(EINVALID, "Public-Key must be a compressed key (02 or 03 prefix)")
	}
	return k, nil
}

// String is the lowercase hex form the apps send.
func (k NodeKey) String() string { return hex.EncodeToString(k[:]) }

// Short is a prefix for logs: enough to tell nodes apart, not to name one.
func (k NodeKey) Short() string { return k.String()[:12] }

// Network is one of the four Bitcoin networks a wallet runs on.
type Network string

// Networks lists every network the protocol accepts.
var networks = []Network{"bitcoin", "testnet", "regtest", "signet"}

// ParseNetwork validates the network query parameter.
func ParseNetwork(s string) (Network, error) {
	if s == "" {
		return "", Errorf(EINVALID, "missing network parameter")
	}
	for _, n := range networks {
		if string(n) == s {
			return n, nil
		}
	}
	return "", Errorf(EINVALID, "unknown network %q (want one of bitcoin, testnet, regtest, signet)", truncate(s))
}

// ParseChannelID validates an LDK channel id: 64 hex characters. It returns
// the 32 bytes, so "AB.." and "ab.." name the same object.
func ParseChannelID(s string) ([]byte, error) {
	if s == "" {
		return nil, Errorf(EINVALID, "label channel_monitor needs a channelId parameter")
	}
	if len(s) != 64 {
		return nil, Errorf(EINVALID, "channelId must be 64 hex characters")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, Errorf(EINVALID, "channelId must be 64 hex characters")
	}
	return b, nil
}

// ObjectKey names one stored object. ChannelID is empty for every label but
// channel_monitor.
type ObjectKey struct {
	Tenant    TenantID
	Node      NodeKey
	Network   Network
	Label     string
	ChannelID []byte
}

// ParseObjectKey validates the network, label and channelId parameters of a
// persist or retrieve request against the tenant's label policy. As in the
// protocol, channelId is required for channel_monitor and ignored otherwise.
func ParseObjectKey(tenant *Tenant, node NodeKey, network, label, channelID string) (ObjectKey, error) {
	key := ObjectKey{Tenant: tenant.ID, Node: node}
	var err error
	if key.Network, err = ParseNetwork(network); err != nil {
		return ObjectKey{}, err
	}
	if label == "" {
		return ObjectKey{}, Errorf(EINVALID, "missing label parameter")
	}
	if _, ok := tenant.Labels.Group(label); !ok {
		return ObjectKey{}, Errorf(EINVALID, "unknown label %q", truncate(label))
	}
	key.Label = label
	if label == LabelChannelMonitor {
		if key.ChannelID, err = ParseChannelID(channelID); err != nil {
			return ObjectKey{}, err
		}
	}
	return key, nil
}

// truncate keeps error messages short when a client sends a huge value.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "..."
}
