package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"ldkbackup/internal/vss"
	"ldkbackup/internal/vssauth"
	"ldkbackup/internal/vssclient"
	"ldkbackup/internal/vsspb"
)

// Shapes of the VSS scenarios.
const (
	vssStoreID   = "bench"
	vssPageSize  = vss.MaxPageSize // what a client that names no page size gets
	vssListKeys  = 1000
	vssListUsers = 16 // stores of vssListKeys keys: several, so reads do not all hit one user's rows
	vssRestoreN  = 200
	vssRestoreSz = 4 * kib
	vssSeedBatch = 100 // items per put while filling stores (setup)
)

// vssUser is one ldk-node: a key whose signature header authorizes its
// requests, and a client of the server's default tenant.
type vssUser struct {
	c *vssclient.Client
}

// newVSSUsers returns n users with fresh keys. requests, when not nil,
// counts the HTTP requests they make.
func (e *benchEnv) newVSSUsers(n int, requests *atomic.Int64) ([]vssUser, error) {
	users := make([]vssUser, n)
	for i := range users {
		key, err := btcec.NewPrivateKey()
		if err != nil {
			return nil, err
		}
		users[i] = vssUser{c: vssclient.New(e.baseURL+"/vss", e.http, signatureHeaders(key, requests))}
	}
	return users, nil
}

// signatureHeaders signs the header as vss-client's SigsAuthProvider does,
// once per second: the signature is deterministic, so every request of
// that second carries the same header whether it is signed again or not,
// and signing each request would load the machine being measured.
func signatureHeaders(key *btcec.PrivateKey, requests *atomic.Int64) vssclient.HeaderProvider {
	var mu sync.Mutex
	var second int64
	var header string
	return vssclient.HeaderFunc(func(context.Context, []byte) (http.Header, error) {
		if requests != nil {
			requests.Add(1)
		}
		now := time.Now()
		mu.Lock()
		if now.Unix() != second {
			second, header = now.Unix(), vssauth.SignatureHeader(key, now)
		}
		h := header
		mu.Unlock()
		return http.Header{"Authorization": {h}}, nil
	})
}

// vssKey is key j of a store: ldk-node's keys are obfuscated by the
// client, opaque strings of this length.
func vssKey(j int) string { return fmt.Sprintf("%064x", j) }

func vssKeys(n int) []string {
	keys := make([]string, n)
	for j := range keys {
		keys[j] = vssKey(j)
	}
	return keys
}

// fillVSSStores writes keys into every user's store with version -1, in
// batches, bodies in turn (setup, not measured).
func (e *benchEnv) fillVSSStores(ctx context.Context, users []vssUser, keys []string, bodies *bodySource) error {
	work := make(chan int)
	errs := make(chan error, len(users))
	var wg sync.WaitGroup
	for range e.opts.concurrency {
		wg.Go(func() {
			for u := range work {
				errs <- e.fillVSSStore(ctx, users[u], u*len(keys), keys, bodies)
			}
		})
	}
	for u := range users {
		work <- u
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return fmt.Errorf("fill the VSS stores: %w", err)
		}
	}
	return analyze(ctx, e.admin, "vss_objects", "vss_users")
}

// analyze gives the planner statistics of tables a scenario just filled, as
// autovacuum keeps production's current (it may be off on a test machine):
// without them the planner read a VSS store's global version by scanning
// all of the store's keys. Only after a fill: statistics of a table that
// is empty when a run starts (a persist scenario's) would mislead the plans
// the run keeps while the table grows.
func analyze(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, tables ...string) error {
	for _, t := range tables {
		if _, err := db.Exec(ctx, "ANALYZE "+pgx.Identifier{t}.Sanitize()); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return nil
}

func (e *benchEnv) fillVSSStore(ctx context.Context, u vssUser, first int, keys []string, bodies *bodySource) error {
	for start := 0; start < len(keys); start += vssSeedBatch {
		var items []*vsspb.KeyValue
		for j := start; j < min(len(keys), start+vssSeedBatch); j++ {
			items = append(items, &vsspb.KeyValue{Key: keys[j], Value: bodies.body((first + j) % bodies.n), Version: -1})
		}
		if err := u.c.PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: vssStoreID, TransactionItems: items}); err != nil {
			return err
		}
	}
	return nil
}

// vssPutScenario measures puts of size bytes with version -1, as ldk-node
// writes, each with a value of its own, against the raw upsert of the same
// rows. Consecutive puts go to different users, as for v1's persists.
func vssPutScenario(size int) func(context.Context, *benchEnv) ([]report, error) {
	return func(ctx context.Context, e *benchEnv) ([]report, error) {
		users, err := e.newVSSUsers(e.opts.nodes, nil)
		if err != nil {
			return nil, err
		}
		keys := vssKeys(e.opts.objectsPerNode)
		bodies := newBodySource(size, min(1<<16, max(1, rawBodyBytes/size)))
		target := func(seq int64) (int, string, []byte) {
			u := int(seq % int64(len(users)))
			j := int(seq/int64(len(users))) % len(keys)
			return u, keys[j], bodies.body(int(seq % int64(bodies.n)))
		}
		raw, err := e.measureVSSRaw(ctx, func(ctx context.Context, seq int64) error {
			u, key, value := target(seq)
			return e.raw.vssPut(ctx, int64(u), vssStoreID, key, value)
		})
		if err != nil {
			return nil, err
		}
		m, err := e.measureServer(ctx, "vss-put-"+sizeName(size), e.spec(), func(ctx context.Context, seq int64) error {
			u, key, value := target(seq)
			return users[u].c.PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: vssStoreID,
				TransactionItems: []*vsspb.KeyValue{{Key: key, Value: value, Version: -1}}})
		})
		if err != nil {
			return nil, err
		}
		return []report{{
			Op: "vss-put", BodyBytes: size, Concurrency: e.opts.concurrency, HTTPPerOp: 1,
			measurement: m, Raw: &raw, ServerVsRaw: compare(m, raw),
			Note: "raw: one upsert of the key's row",
		}}, nil
	}
}

// vssGetScenario reads values of size bytes back, against raw reads by
// primary key of the same rows.
func vssGetScenario(size int) func(context.Context, *benchEnv) ([]report, error) {
	return func(ctx context.Context, e *benchEnv) ([]report, error) {
		users, err := e.newVSSUsers(e.opts.nodes, nil)
		if err != nil {
			return nil, err
		}
		keys := vssKeys(e.opts.objectsPerNode)
		bodies := newBodySource(size, len(users)*len(keys))
		if err := e.fillVSSStores(ctx, users, keys, bodies); err != nil {
			return nil, err
		}
		target := func(seq int64) (int, string) {
			return int(seq % int64(len(users))), keys[int(seq/int64(len(users)))%len(keys)]
		}
		m, err := e.measureServer(ctx, "vss-get-"+sizeName(size), e.spec(), func(ctx context.Context, seq int64) error {
			u, key := target(seq)
			resp, err := users[u].c.GetObject(ctx, &vsspb.GetObjectRequest{StoreId: vssStoreID, Key: key})
			if err == nil && len(resp.Value.Value) != size {
				err = fmt.Errorf("vss get: %d bytes, want %d", len(resp.Value.Value), size)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		raw, err := e.measureVSSRawRead(ctx, len(users), keys, bodies, func(ctx context.Context, seq int64) error {
			u, key := target(seq)
			value, _, err := e.raw.vssGet(ctx, int64(u), vssStoreID, key)
			if err == nil && len(value) != size {
				err = fmt.Errorf("raw vss get: %d bytes, want %d", len(value), size)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		return []report{{
			Op: "vss-get", BodyBytes: size, Concurrency: e.opts.concurrency, HTTPPerOp: 1,
			measurement: m, Raw: &raw, ServerVsRaw: compare(m, raw),
			Note: "raw: one read by primary key",
		}}, nil
	}
}

// vssListScenario lists whole stores of vssListKeys keys as a client does,
// page after page of listKeyVersions, against the raw statements that read
// the same pages.
func vssListScenario(ctx context.Context, e *benchEnv) ([]report, error) {
	return e.vssReadStores(ctx, "vss-list", vssListKeys, vssListUsers, 256, false)
}

// vssRestoreScenario reads whole stores of vssRestoreN keys as ldk-node
// reads its state at startup: list every key, then get each, one request
// at a time.
func vssRestoreScenario(ctx context.Context, e *benchEnv) ([]report, error) {
	return e.vssReadStores(ctx, "vss-restore", vssRestoreN, e.opts.nodes, vssRestoreSz, true)
}

// vssReadStores fills the stores of nUsers users with nKeys keys of size
// bytes, then measures reading a whole store per operation: its list, and
// with get each value too.
func (e *benchEnv) vssReadStores(ctx context.Context, op string, nKeys, nUsers, size int, get bool) ([]report, error) {
	var requests atomic.Int64
	users, err := e.newVSSUsers(nUsers, &requests)
	if err != nil {
		return nil, err
	}
	keys := vssKeys(nKeys)
	bodies := newBodySource(size, min(nUsers*nKeys, 1<<16))
	if err := e.fillVSSStores(ctx, users, keys, bodies); err != nil {
		return nil, err
	}
	read := func(ctx context.Context, seq int64) error {
		c := users[seq%int64(len(users))].c
		listed, _, err := c.ListAll(ctx, vssStoreID, "", nil)
		if err != nil {
			return err
		}
		if len(listed) != nKeys {
			return fmt.Errorf("%s: listed %d keys, want %d", op, len(listed), nKeys)
		}
		if !get {
			return nil
		}
		for _, kv := range listed {
			resp, err := c.GetObject(ctx, &vsspb.GetObjectRequest{StoreId: vssStoreID, Key: kv.Key})
			if err != nil {
				return err
			}
			if len(resp.Value.Value) != size || resp.Value.Version != kv.Version {
				return fmt.Errorf("%s: %s has %d bytes at version %d, want %d at %d", op, kv.Key, len(resp.Value.Value), resp.Value.Version, size, kv.Version)
			}
		}
		return nil
	}
	// One read outside the measurement counts its requests.
	requests.Store(0)
	if err := read(ctx, 0); err != nil {
		return nil, err
	}
	httpPerOp := int(requests.Load())

	name := fmt.Sprintf("%s-%d", op, nKeys)
	m, err := e.measureServer(ctx, name, e.spec(), read)
	if err != nil {
		return nil, err
	}
	raw, err := e.measureVSSRawRead(ctx, nUsers, keys, bodies, func(ctx context.Context, seq int64) error {
		u := seq % int64(nUsers)
		listed, err := e.raw.vssList(ctx, u, vssStoreID)
		if err != nil {
			return err
		}
		if len(listed) != nKeys {
			return fmt.Errorf("raw %s: listed %d keys, want %d", op, len(listed), nKeys)
		}
		if !get {
			return nil
		}
		for _, key := range listed {
			if _, _, err := e.raw.vssGet(ctx, u, vssStoreID, key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	note := fmt.Sprintf("raw: one statement per page of %d keys", vssPageSize)
	if get {
		note += ", then one read by primary key per key"
	}
	return []report{{
		Scenario: name, Op: op, BodyBytes: size, Concurrency: e.opts.concurrency, HTTPPerOp: httpPerOp,
		measurement: m, Raw: &raw, ServerVsRaw: compare(m, raw), Note: note,
	}}, nil
}

// measureVSSRaw runs op against empty raw tables.
func (e *benchEnv) measureVSSRaw(ctx context.Context, op operation) (measurement, error) {
	if err := e.raw.reset(ctx); err != nil {
		return measurement{}, err
	}
	return e.measureRaw(ctx, e.spec(), op)
}

// measureVSSRawRead runs op against raw tables holding the rows the
// server's stores hold: keys of nUsers users, bodies in the same turn.
func (e *benchEnv) measureVSSRawRead(ctx context.Context, nUsers int, keys []string, bodies *bodySource, op operation) (measurement, error) {
	if err := e.raw.reset(ctx); err != nil {
		return measurement{}, err
	}
	if err := e.raw.vssSeed(ctx, nUsers, vssStoreID, keys, bodies); err != nil {
		return measurement{}, err
	}
	return e.measureRaw(ctx, e.spec(), op)
}
