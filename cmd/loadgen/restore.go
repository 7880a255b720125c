package main

import (
	"context"
	"fmt"
	"sync"
)

// restoreScenario measures complete restores as a new phone does them: log
// in, list, retrieve and decrypt the channel manager and 20 monitors.
func restoreScenario(ctx context.Context, e *benchEnv) ([]report, error) {
	nodes, err := e.storeRestoreNodes(ctx)
	if err != nil {
		return nil, err
	}
	m, err := e.measureServer(ctx, "restore", e.spec(), e.restoreOp(nodes))
	if err != nil {
		return nil, err
	}
	raw, err := e.measureRawRestore(ctx, nodes)
	if err != nil {
		return nil, err
	}
	return []report{{
		Op: "restore", BodyBytes: restorePlaintext, Concurrency: e.opts.concurrency, HTTPPerOp: restoreHTTP,
		measurement: m, Raw: &raw, ServerVsRaw: compare(m, raw),
		Note: "raw: the login's two commits, one index range read and 21 primary-key reads",
	}}, nil
}

// storeRestoreNodes gives each of e.opts.nodes nodes a channel manager and
// 20 channel monitors of 4 KiB, encrypted under the node secret as the apps
// do, so that a restore can decrypt them.
func (e *benchEnv) storeRestoreNodes(ctx context.Context) ([]benchNode, error) {
	nodes, err := newNodes(e.opts.nodes)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, restorePlaintext)
	work := make(chan *benchNode)
	errs := make(chan error, len(nodes))
	var wg sync.WaitGroup
	for range e.opts.concurrency {
		wg.Go(func() {
			for n := range work {
				errs <- e.storeNodeBackup(ctx, n, plain)
			}
		})
	}
	for i := range nodes {
		work <- &nodes[i]
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, fmt.Errorf("store the backups to restore: %w", err)
		}
	}
	return nodes, nil
}

func (e *benchEnv) storeNodeBackup(ctx context.Context, n *benchNode, plain []byte) error {
	c, err := e.newClient(n)
	if err != nil {
		return err
	}
	if _, err := c.Persist(ctx, "channel_manager", "", plain); err != nil {
		return err
	}
	for j := range restoreMonitors {
		if _, err := c.Persist(ctx, "channel_monitor", channelID(j), plain); err != nil {
			return err
		}
	}
	return nil
}

// restoreOp restores node seq%len(nodes) with a new client each time, so
// every restore logs in as a phone restoring from its seed does.
func (e *benchEnv) restoreOp(nodes []benchNode) operation {
	return func(ctx context.Context, seq int64) error {
		c, err := e.newClient(&nodes[seq%int64(len(nodes))])
		if err != nil {
			return err
		}
		b, err := c.Restore(ctx)
		if err != nil {
			return err
		}
		if len(b.Files) != 1 || len(b.ChannelFiles) != restoreMonitors {
			return fmt.Errorf("restore: %d files and %d monitors, want 1 and %d", len(b.Files), len(b.ChannelFiles), restoreMonitors)
		}
		return nil
	}
}

func (e *benchEnv) measureRawRestore(ctx context.Context, nodes []benchNode) (measurement, error) {
	if err := e.raw.reset(ctx); err != nil {
		return measurement{}, err
	}
	const objects = 1 + restoreMonitors
	// Ciphertext of 4 KiB plaintext: nonce and tag around it.
	bodies := newBodySource(restorePlaintext+28, objects*len(nodes))
	ids := make([]int64, 0, objects*len(nodes))
	for n := range nodes {
		for j := range objects {
			ids = append(ids, int64(n*rawRestoreStride+j))
		}
	}
	if err := e.raw.seed(ctx, ids, bodies); err != nil {
		return measurement{}, err
	}
	keys := make([][]byte, len(nodes))
	for i := range nodes {
		keys[i] = nodes[i].key.PubKey().SerializeCompressed()
	}
	return e.measureRaw(ctx, e.spec(), func(ctx context.Context, seq int64) error {
		n := int(seq % int64(len(nodes)))
		return e.raw.restore(ctx, n, keys[n], objects)
	})
}
