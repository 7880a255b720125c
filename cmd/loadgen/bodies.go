package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/client"
	"ldkbackup/internal/lnsig"
)

// bodyStride is how far apart two bodies start in a bodySource's buffer.
const bodyStride = 16

// bodySource hands out distinct bodies of one size without holding each one:
// body i is the window of size bytes at offset i*bodyStride of one random
// buffer. The server refuses a body a node uploaded before (409), so every
// persist needs bytes of its own; two windows of random bytes are equal only
// if the buffer repeats itself, which it does not. A million 1 MiB bodies
// take 17 MiB.
type bodySource struct {
	buf  []byte
	size int
	n    int
}

func newBodySource(size, n int) *bodySource {
	buf := make([]byte, size+(n-1)*bodyStride)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails
	return &bodySource{buf: buf, size: size, n: n}
}

// body returns body i (0 <= i < n). Callers must not modify it.
func (b *bodySource) body(i int) []byte {
	off := i * bodyStride
	return b.buf[off : off+b.size : off+b.size]
}

// benchNode is one wallet: a node key and its secret, which the apps also use
// as the AES key of their backups.
type benchNode struct {
	secret []byte
	key    *btcec.PrivateKey
	pubHex string
}

func newNodes(n int) ([]benchNode, error) {
	nodes := make([]benchNode, n)
	for i := range nodes {
		key, err := btcec.NewPrivateKey()
		if err != nil {
			return nil, err
		}
		nodes[i] = benchNode{secret: key.Serialize(), key: key, pubHex: lnsig.PublicKeyHex(key)}
	}
	return nodes, nil
}

// channelID is the 64-hex channel id of a node's j-th channel monitor.
func channelID(j int) string { return fmt.Sprintf("%064x", j+1) }

// objectRef names one object of one node.
type objectRef struct {
	node      *benchNode
	label     string
	channelID string // "" unless label is channel_monitor
}

// persistRequest is a persist with every header computed in advance: the
// signature over the body's hash (~65 µs of CPU per request) and the hashing
// itself (~0.5 ms per MiB) would otherwise be spent by this process on the
// machine being measured.
type persistRequest struct {
	url       string
	body      []byte
	header    map[string]string
	challenge string
}

// presign prepares count persists: request i stores body i of bodies under
// target(i). The work is spread over every CPU; it happens before a run, not
// during it.
func presign(ctx context.Context, baseURL string, bodies *bodySource, count int, target func(i int) objectRef) ([]persistRequest, error) {
	if count > bodies.n {
		return nil, fmt.Errorf("presign: %d requests but only %d bodies", count, bodies.n)
	}
	reqs := make([]persistRequest, count)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < count && ctx.Err() == nil; i += workers {
				reqs[i] = newPersistRequest(baseURL, target(i), bodies.body(i))
			}
		})
	}
	wg.Wait()
	return reqs, ctx.Err()
}

func newPersistRequest(baseURL string, obj objectRef, body []byte) persistRequest {
	sum := sha256.Sum256(body)
	url := baseURL + "/v1/persist?network=" + benchNetwork + "&label=" + obj.label
	if obj.channelID != "" {
		url += "&channelId=" + obj.channelID
	}
	challenge := client.PersistChallenge(obj.node.pubHex, client.AndroidTimestamps, time.Now())
	return persistRequest{url: url, body: body, header: client.PersistHeaders(obj.node.key, sum, challenge), challenge: challenge}
}

// persistPlan spreads persists over nodes and objects. Consecutive sequence
// numbers go to different nodes, so the requests in flight at one time
// belong to different nodes and do not queue on one node's row lock (which
// real wallets, each persisting its own node, would not either).
type persistPlan struct {
	nodes          []benchNode
	objectsPerNode int
}

func (p persistPlan) target(i int) objectRef {
	node := &p.nodes[i%len(p.nodes)]
	j := (i / len(p.nodes)) % p.objectsPerNode
	return objectRef{node: node, label: "channel_monitor", channelID: channelID(j)}
}

// objects is the number of distinct objects the plan writes to.
func (p persistPlan) objects() int { return len(p.nodes) * p.objectsPerNode }
