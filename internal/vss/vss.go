// Package vss serves LDK's Versioned Storage Service (VSS) protocol: the
// rules of its four operations over a user's stores, as the reference
// server applies them, on the same store design, limits and refusals as
// the v1 protocol (internal/backup). The store (internal/postgres) holds
// every rule that SQL can; this package checks requests and shapes replies.
package vss

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/vsspb"
)

// Limits of the protocol, as the reference server sets them.
const (
	// MaxItems is the most put and delete items of one putObjects.
	MaxItems = 1000
	// MaxPageSize caps a listKeyVersions page; a request without a page
	// size gets this many.
	MaxPageSize = 100
	// MaxStoreIDChars, MaxKeyChars and MaxUserTokenChars are the lengths
	// of the reference's columns, in characters.
	MaxStoreIDChars   = 120
	MaxKeyChars       = 600
	MaxUserTokenChars = 120
)

// ENOSUCHKEY is the error code of a getObject of a key that does not exist:
// the only refusal the protocol answers with NO_SUCH_KEY (a client reads it
// as "never written", so nothing else may share it).
const ENOSUCHKEY = "no_such_key"

// GlobalVersionKey is the key under which a store's global version is kept:
// a row like any other, hidden from lists.
const GlobalVersionKey = "global_version"

// User is whose data a request reaches: a tenant's user token, as the
// tenant's authorizer proved it.
type User struct {
	Tenant *backup.Tenant
	Token  string
}

// NewUser checks a user token an authorizer returned.
func NewUser(t *backup.Tenant, token string) (User, error) {
	if token == "" || utf8.RuneCountInString(token) > MaxUserTokenChars || strings.ContainsRune(token, 0) || !utf8.ValidString(token) {
		return User{}, backup.Errorf(backup.EUNAUTHORIZED, "user token must be 1 to %d characters", MaxUserTokenChars)
	}
	return User{Tenant: t, Token: token}, nil
}

// Write is one putObjects (or a lone deleteObject) as the store applies it.
type Write struct {
	StoreID       string
	Puts          []*vsspb.KeyValue
	GlobalVersion *int64
	Deletes       []*vsspb.KeyValue
	// MissingOK: a delete that matches nothing is no failure (deleteObject).
	MissingOK bool
}

// Store keeps users' stores durably; writes return after commit.
type Store interface {
	// PutVSS applies w in one transaction: an error with code ECONFLICT,
	// and nothing changed, when an item does not match. Limits are
	// enforced in the same transaction (ERATELIMITED, EQUOTA). A write
	// over its user's allowance that may wait for its turn writes nothing
	// and returns the wait: the turn is taken, and the caller calls again
	// after it without the user's rate limit.
	PutVSS(ctx context.Context, u User, w Write, now time.Time, limits backup.WriteLimits) (wait time.Duration, err error)
	// OpenVSSValue is a getObject's first read, counted against limit in
	// the same round trip: the key's version and size and its first
	// len(buf) bytes, read into buf; backup.ErrNotFound without the key.
	OpenVSSValue(ctx context.Context, u User, storeID, key string, now time.Time, limit backup.ReadLimit, buf []byte) (OpenedValue, error)
	// ReadVSSChunk reads len(buf) bytes of the value from byte off into
	// buf; ErrValueChanged when the key was written or deleted since it
	// was opened.
	ReadVSSChunk(ctx context.Context, id ValueID, off int64, buf []byte) ([]byte, error)
	// ListVSSKeys reads one page of a store's keys, newest created first,
	// and the store's global version (nil when it has none), in one
	// snapshot, counted against limit.
	ListVSSKeys(ctx context.Context, u User, q ListQuery, now time.Time, limit backup.ReadLimit) (Page, error)
}

// ValueID names one written value of a key for the reads after the first.
type ValueID struct {
	UserID   int64
	StoreID  string
	Key      string
	Seq      int64 // the row (a key deleted and written again is a new row)
	Revision int64 // the write of the row
}

// OpenedValue is what a getObject's first read returns.
type OpenedValue struct {
	ID      ValueID
	Version int64
	Size    int64
	Head    []byte
}

// ErrValueChanged is a value written or deleted while it was being read.
var ErrValueChanged = backup.Errorf(backup.EUNAVAILABLE, "the value changed while it was read, retry")

// ListQuery is one page of listKeyVersions.
type ListQuery struct {
	StoreID string
	Prefix  string
	// Paged: Before is the seq of the previous page's last key.
	Paged  bool
	Before int64
	// Rows is how many keys to read: one more than the page, to tell
	// whether another page follows.
	Rows int
}

// Page is what the store read for one page.
type Page struct {
	Keys          []KeyVersion
	GlobalVersion *int64
}

// KeyVersion is a listed key.
type KeyVersion struct {
	Key     string
	Version int64
	Seq     int64
}

// Service applies the protocol's rules on a Store.
type Service struct {
	store Store
	clock backup.Clock
	paced func(backup.TenantID, time.Duration)
}

// NewService returns a Service over store on clock; paced is told of every
// write that waits for its turn under its user's allowance, as it starts
// to wait (Put and Delete say how long they waited when they end).
func NewService(store Store, clock backup.Clock, paced func(backup.TenantID, time.Duration)) *Service {
	if paced == nil {
		paced = func(backup.TenantID, time.Duration) {}
	}
	return &Service{store: store, clock: clock, paced: paced}
}

// Put applies a putObjects of user u from addr (the client address new
// users are counted against), and says how long it waited for its turn
// under the user's allowance.
func (s *Service) Put(ctx context.Context, u User, addr string, req *vsspb.PutObjectRequest) (waited time.Duration, err error) {
	if err := checkStoreID(req.GetStoreId()); err != nil {
		return 0, err
	}
	if n := len(req.GetTransactionItems()) + len(req.GetDeleteItems()); n > MaxItems {
		return 0, backup.Errorf(backup.EINVALID, "a request may hold at most %d items, not %d", MaxItems, n)
	}
	for _, kv := range req.GetTransactionItems() {
		if err := checkItem(kv); err != nil {
			return 0, err
		}
	}
	for _, kv := range req.GetDeleteItems() {
		if err := checkItem(kv); err != nil {
			return 0, err
		}
	}
	if req.GlobalVersion != nil && *req.GlobalVersion < -1 {
		return 0, backup.Errorf(backup.EINVALID, "global_version must be -1 or more")
	}
	return s.write(ctx, u, addr, Write{
		StoreID:       req.GetStoreId(),
		Puts:          req.GetTransactionItems(),
		GlobalVersion: req.GlobalVersion,
		Deletes:       req.GetDeleteItems(),
	})
}

// Delete applies a deleteObject: idempotent, a key already gone is no
// failure. It says how long it waited for its turn.
func (s *Service) Delete(ctx context.Context, u User, addr string, req *vsspb.DeleteObjectRequest) (waited time.Duration, err error) {
	if err := checkStoreID(req.GetStoreId()); err != nil {
		return 0, err
	}
	kv := req.GetKeyValue()
	if kv == nil {
		return 0, backup.Errorf(backup.EINVALID, "key_value missing in DeleteObjectRequest")
	}
	if err := checkItem(kv); err != nil {
		return 0, err
	}
	return s.write(ctx, u, addr, Write{StoreID: req.GetStoreId(), Deletes: []*vsspb.KeyValue{kv}, MissingOK: true})
}

// write stores w; a write over its user's allowance waits for its turn
// rather than being refused, as a v1 persist does.
func (s *Service) write(ctx context.Context, u User, addr string, w Write) (waited time.Duration, err error) {
	limits := u.writeLimits(addr)
	wait, err := s.store.PutVSS(ctx, u, w, s.clock.Now(), limits)
	if err == nil && wait > 0 {
		s.paced(u.Tenant.ID, wait)
		if err := s.clock.Sleep(ctx, wait); err != nil {
			return wait, backup.Errorf(backup.EUNAVAILABLE, "request ended while waiting for its turn")
		}
		limits.NodePerMinute = 0
		_, err = s.store.PutVSS(ctx, u, w, s.clock.Now(), limits)
		return wait, err
	}
	return 0, err
}

// List answers one page of listKeyVersions.
func (s *Service) List(ctx context.Context, u User, req *vsspb.ListKeyVersionsRequest) (*vsspb.ListKeyVersionsResponse, error) {
	if err := checkStoreID(req.GetStoreId()); err != nil {
		return nil, err
	}
	prefix := req.GetKeyPrefix()
	if err := checkKey("key_prefix", prefix); err != nil {
		return nil, err
	}
	size := MaxPageSize
	if req.PageSize != nil {
		if *req.PageSize < 0 {
			return nil, backup.Errorf(backup.EINVALID, "page_size must not be negative")
		}
		size = min(int(*req.PageSize), MaxPageSize)
	}
	q := ListQuery{StoreID: req.GetStoreId(), Prefix: prefix, Rows: size + 1}
	if size == 0 {
		q.Rows = 0
	}
	if req.PageToken != nil {
		before, err := strconv.ParseInt(*req.PageToken, 10, 64)
		if err != nil || before < 0 || (*req.PageToken)[0] == '+' {
			return nil, backup.Errorf(backup.EINVALID, "Invalid page token")
		}
		q.Paged, q.Before = true, before
	}
	page, err := s.store.ListVSSKeys(ctx, u, q, s.clock.Now(), u.readLimit())
	if err != nil {
		return nil, err
	}
	resp := &vsspb.ListKeyVersionsResponse{NextPageToken: new(string)}
	if !q.Paged {
		// The first page carries the global version, 0 when the store has
		// none (a page token's pages never do).
		gv := int64(0)
		if page.GlobalVersion != nil {
			gv = *page.GlobalVersion
		}
		resp.GlobalVersion = &gv
	}
	keys := page.Keys
	if len(keys) > size {
		keys = keys[:size]
		*resp.NextPageToken = strconv.FormatInt(keys[len(keys)-1].Seq, 10)
	}
	resp.KeyVersions = make([]*vsspb.KeyValue, len(keys))
	for i, k := range keys {
		resp.KeyVersions[i] = &vsspb.KeyValue{Key: k.Key, Version: k.Version}
	}
	return resp, nil
}

// Get opens the value of a getObject for reading into buf, which the
// caller owns until the Value is done with. The global version's key
// answers version 0 when the store has none.
func (s *Service) Get(ctx context.Context, u User, req *vsspb.GetObjectRequest, buf []byte) (*Value, error) {
	if err := checkStoreID(req.GetStoreId()); err != nil {
		return nil, err
	}
	if err := checkKey("key", req.GetKey()); err != nil {
		return nil, err
	}
	if len(buf) == 0 {
		return nil, fmt.Errorf("vss get: empty buffer")
	}
	v, err := s.store.OpenVSSValue(ctx, u, req.GetStoreId(), req.GetKey(), s.clock.Now(), u.readLimit(), buf)
	if backup.ErrorCode(err) == backup.ENOTFOUND && req.GetKey() == GlobalVersionKey {
		return newValue(s.store, OpenedValue{ID: ValueID{Key: GlobalVersionKey}}, buf), nil
	}
	if backup.ErrorCode(err) == backup.ENOTFOUND {
		return nil, backup.Errorf(ENOSUCHKEY, "Requested key not found.")
	}
	if err != nil {
		return nil, err
	}
	if want := min(v.Size, int64(len(buf))); int64(len(v.Head)) != want {
		return nil, fmt.Errorf("vss get: first read of %d bytes, want %d", len(v.Head), want)
	}
	return newValue(s.store, v, buf), nil
}

// Short is what logs show of the user: a 12-character prefix of its token,
// as of a node key (a JWT subject may be an account name).
func (u User) Short() string {
	if utf8.RuneCountInString(u.Token) <= 12 {
		return u.Token
	}
	return string([]rune(u.Token)[:12])
}

// writeLimits are the limits of a write by u from addr: the tenant's node
// limits, which a VSS user has as a v1 node does.
func (u User) writeLimits(addr string) backup.WriteLimits {
	l := u.Tenant.Limits
	return backup.WriteLimits{
		NodeRateKey:     u.rateKey(),
		NodePerMinute:   l.NodePerMinute,
		NewNodeKey:      backup.RateKeyNewNode(u.Tenant.ID, addr),
		NewNodesPerHour: l.NewNodesPerAddressPerHour,
		PaceMaxWait:     l.PaceMaxWait,
		QuotaBytes:      l.QuotaBytes,
		QuotaObjects:    l.QuotaObjects,
	}
}

func (u User) readLimit() backup.ReadLimit {
	if u.Tenant.Limits.NodePerMinute <= 0 {
		return backup.ReadLimit{}
	}
	return backup.ReadLimit{NodeRateKey: u.rateKey(), NodePerMinute: u.Tenant.Limits.NodePerMinute}
}

// rateKey is the user's rate counter: a "node" key (rate_take raises the
// per-node limit's SQLSTATE for it) of its own, apart from any v1 node.
func (u User) rateKey() string { return fmt.Sprintf("node:%d:vss:%s", u.Tenant.ID, u.Token) }

func checkStoreID(id string) error {
	if utf8.RuneCountInString(id) > MaxStoreIDChars {
		return backup.Errorf(backup.EINVALID, "store_id must be at most %d characters", MaxStoreIDChars)
	}
	if strings.ContainsRune(id, 0) {
		return backup.Errorf(backup.EINVALID, "store_id must not hold NUL characters")
	}
	return nil
}

func checkKey(name, key string) error {
	if utf8.RuneCountInString(key) > MaxKeyChars {
		return backup.Errorf(backup.EINVALID, "%s must be at most %d characters", name, MaxKeyChars)
	}
	if strings.ContainsRune(key, 0) {
		return backup.Errorf(backup.EINVALID, "%s must not hold NUL characters", name)
	}
	return nil
}

func checkItem(kv *vsspb.KeyValue) error {
	if kv == nil {
		return backup.Errorf(backup.EINVALID, "missing item")
	}
	if err := checkKey("key", kv.GetKey()); err != nil {
		return err
	}
	if kv.GetVersion() < -1 {
		return backup.Errorf(backup.EINVALID, "version must be -1 (any), 0 (new key) or the key's version")
	}
	return nil
}
