package main

import (
	"context"
	"fmt"

	"ldkbackup/internal/client"
)

// sizeName writes a body size as the scenario names do: 4KiB, 1MiB.
func sizeName(size int) string {
	if size%mib == 0 {
		return fmt.Sprintf("%dMiB", size/mib)
	}
	return fmt.Sprintf("%dKiB", size/kib)
}

// benchNetwork is the network every object of the run is stored under.
const benchNetwork = "regtest"

// Sizes of the scenarios.
const (
	kib = 1 << 10
	mib = 1 << 20

	restoreMonitors  = 20 // a restore reads 1 channel manager and 20 monitors
	restorePlaintext = 4 * kib
	// restoreHTTP: auth/challenge, auth/response, list, one retrieve each.
	restoreHTTP = 2 + 1 + 1 + restoreMonitors
)

// scenario is one line of output (or several, for scale).
type scenario struct {
	key  string // as -scenarios names it
	name string // as the output names it
	run  func(ctx context.Context, e *benchEnv) ([]report, error)
}

// allScenarios lists every scenario in the order they run: the memory
// scenario late, as it leaves the server's heap large; scale last, as it
// fills the database.
func allScenarios(opts options) []scenario {
	return []scenario{
		{"persist-4KiB", "persist-4KiB", persistScenario(4 * kib)},
		{"persist-64KiB", "persist-64KiB", persistScenario(64 * kib)},
		{"persist-1MiB", "persist-1MiB", persistScenario(mib)},
		{"retrieve-64KiB", "retrieve-64KiB", retrieveScenario(64 * kib)},
		// Larger than RETRIEVE_CHUNK_BYTES: pinned and read in chunks.
		{"retrieve-1MiB", "retrieve-1MiB", retrieveScenario(mib)},
		{"restore", "restore", restoreScenario},
		{"vss-put-4KiB", "vss-put-4KiB", vssPutScenario(4 * kib)},
		{"vss-get-64KiB", "vss-get-64KiB", vssGetScenario(64 * kib)},
		{"vss-list-1000", "vss-list-1000", vssListScenario},
		{"vss-restore-200", "vss-restore-200", vssRestoreScenario},
		{"memory", fmt.Sprintf("memory-%dx%dMiB", opts.memoryConcurrency, opts.memoryBodyBytes/mib), memoryScenario},
		{"scale", "scale", scaleScenario},
	}
}

// persistScenario measures persists of size bytes against raw INSERTs of
// the same bodies. The raw run goes first: its rate bounds the server's and
// so sizes the pool of bodies the server run needs.
func persistScenario(size int) func(context.Context, *benchEnv) ([]report, error) {
	return func(ctx context.Context, e *benchEnv) ([]report, error) {
		nodes, err := newNodes(e.opts.nodes)
		if err != nil {
			return nil, err
		}
		plan := persistPlan{nodes: nodes, objectsPerNode: e.opts.objectsPerNode}
		bodies := newBodySource(size, e.opts.presignMax)

		raw, err := e.measureRawPersist(ctx, plan, bodies)
		if err != nil {
			return nil, err
		}
		e.rawRates[size] = raw.RPS
		m, err := e.measurePersist(ctx, "persist-"+sizeName(size), plan, bodies, e.spec(), e.poolSize(size))
		if err != nil {
			return nil, err
		}
		e.noteServerRate(size, m.RPS)
		return []report{{
			Op: "persist", BodyBytes: size, Concurrency: e.opts.concurrency, HTTPPerOp: 1,
			measurement: m, Raw: &raw, ServerVsRaw: compare(m, raw),
		}}, nil
	}
}

// measureRawPersist INSERTs the first bodies of the source into the raw
// table, one transaction each, with the plan's number of objects; every
// INSERT is a new version, as every persist is.
func (e *benchEnv) measureRawPersist(ctx context.Context, plan persistPlan, bodies *bodySource) (measurement, error) {
	if err := e.raw.reset(ctx); err != nil {
		return measurement{}, err
	}
	// Hashes are computed before the run, as the server's are signed before.
	n := min(bodies.n, max(1, rawBodyBytes/bodies.size), 4096)
	sums := make([][]byte, n)
	for i := range sums {
		sums[i] = sha256Of(bodies.body(i))
	}
	objects := int64(plan.objects())
	return e.measureRaw(ctx, e.spec(), func(ctx context.Context, seq int64) error {
		i := int(seq % int64(n))
		return e.raw.insertVersion(ctx, seq%objects, seq/objects+1, bodies.body(i), sums[i])
	})
}

// rawBodyBytes bounds the bodies the raw run hashes in advance; it cycles
// through them (the raw table has no replay rule).
const rawBodyBytes = 512 * mib

// retrieveScenario reads objects of size bytes back, against raw reads by
// primary key of the same bodies.
func retrieveScenario(size int) func(context.Context, *benchEnv) ([]report, error) {
	return func(ctx context.Context, e *benchEnv) ([]report, error) {
		nodes, err := newNodes(e.opts.nodes)
		if err != nil {
			return nil, err
		}
		plan := persistPlan{nodes: nodes, objectsPerNode: e.opts.objectsPerNode}
		bodies := newBodySource(size, plan.objects())
		reqs, err := presign(ctx, e.baseURL, bodies, plan.objects(), plan.target)
		if err != nil {
			return nil, err
		}
		if err := e.sender.sendAll(ctx, reqs, e.opts.concurrency); err != nil {
			return nil, fmt.Errorf("store the objects to retrieve: %w", err)
		}
		clients, err := e.loggedInClients(ctx, nodes)
		if err != nil {
			return nil, err
		}
		m, err := e.measureServer(ctx, "retrieve-"+sizeName(size), e.spec(), func(ctx context.Context, seq int64) error {
			i := int(seq % int64(plan.objects()))
			obj := plan.target(i)
			blob, err := clients[i%len(nodes)].RetrieveEncrypted(ctx, obj.label, obj.channelID)
			if err == nil && len(blob) != size {
				err = fmt.Errorf("retrieve: %d bytes, want %d", len(blob), size)
			}
			return err
		})
		if err != nil {
			return nil, err
		}

		raw, err := e.measureRawRetrieve(ctx, bodies)
		if err != nil {
			return nil, err
		}
		return []report{{
			Op: "retrieve", BodyBytes: size, Concurrency: e.opts.concurrency, HTTPPerOp: 1,
			measurement: m, Raw: &raw, ServerVsRaw: compare(m, raw),
		}}, nil
	}
}

func (e *benchEnv) measureRawRetrieve(ctx context.Context, bodies *bodySource) (measurement, error) {
	if err := e.raw.reset(ctx); err != nil {
		return measurement{}, err
	}
	ids := make([]int64, bodies.n)
	for i := range ids {
		ids[i] = int64(i)
	}
	if err := e.raw.seed(ctx, ids, bodies); err != nil {
		return measurement{}, err
	}
	return e.measureRaw(ctx, e.spec(), func(ctx context.Context, seq int64) error {
		payload, err := e.raw.readVersion(ctx, seq%int64(len(ids)))
		if err == nil && len(payload) != bodies.size {
			err = fmt.Errorf("raw read: %d bytes, want %d", len(payload), bodies.size)
		}
		return err
	})
}

// loggedInClients returns one client per node, each holding a token, for
// reads whose login is not what is measured.
func (e *benchEnv) loggedInClients(ctx context.Context, nodes []benchNode) ([]*client.Client, error) {
	clients := make([]*client.Client, len(nodes))
	for i := range nodes {
		c, err := e.newClient(&nodes[i])
		if err != nil {
			return nil, err
		}
		if _, err := c.Token(ctx); err != nil {
			return nil, fmt.Errorf("log in: %w", err)
		}
		clients[i] = c
	}
	return clients, nil
}

func (e *benchEnv) newClient(n *benchNode) (*client.Client, error) {
	return client.New(client.Config{
		BaseURL:      e.baseURL,
		Network:      benchNetwork,
		NodeSecret:   n.secret,
		ServerPubKey: e.serverPubHex,
		HTTPClient:   e.http,
		Timestamps:   client.AndroidTimestamps,
	})
}

// memoryScenario sends large persists at high concurrency and reports the
// server's peak resident memory.
func memoryScenario(ctx context.Context, e *benchEnv) ([]report, error) {
	size, conc := e.opts.memoryBodyBytes, e.opts.memoryConcurrency
	nodes, err := newNodes(conc)
	if err != nil {
		return nil, err
	}
	plan := persistPlan{nodes: nodes, objectsPerNode: 2}
	n := max(4*conc, e.poolSize(size))
	bodies := newBodySource(size, n)
	spec := e.spec()
	spec.concurrency = conc
	m, err := e.measurePersist(ctx, "memory", plan, bodies, spec, n)
	if err != nil {
		return nil, err
	}
	note := "peak RSS of the server during this scenario"
	if !e.rssPerScenario {
		note = "peak RSS of the server process over the whole run"
	}
	return []report{{
		Op: "persist", BodyBytes: size, Concurrency: conc, HTTPPerOp: 1, measurement: m, Note: note,
	}}, nil
}
