// Package tenant is the directory of wallet apps (tenants) one deployment
// serves: it resolves a request's tenant to its server key and label policy,
// and carries out the operator's tenant commands.
package tenant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/cache"
	"ldkbackup/internal/vssauth"
)

// slugPattern is what a tenant slug may look like; the tenants table checks
// it too.
var slugPattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// Store keeps tenants.
type Store interface {
	TenantBySlug(ctx context.Context, slug string) (backup.TenantRecord, error) // backup.ErrNotFound
	TenantList(ctx context.Context) ([]backup.TenantSummary, error)
	TenantCreate(ctx context.Context, r backup.TenantRecord) (backup.TenantID, error) // ECONFLICT when the slug exists
	TenantSetDisabled(ctx context.Context, slug string, at *time.Time) (found bool, err error)
	TenantLabelAdd(ctx context.Context, slug, label string, group backup.LabelGroup, now time.Time) (found bool, err error)
	TenantSetVSSAuth(ctx context.Context, slug string, a backup.VSSAuth) (found bool, err error)
}

// Config is what the directory needs from the server's configuration.
type Config struct {
	// DefaultKey is the default tenant's server key (from the environment;
	// nil where nothing is served).
	DefaultKey *btcec.PrivateKey
	// KEK opens the other tenants' server keys; without it only the default
	// tenant works.
	KEK []byte
	// Limits are the server-wide limits, which a tenant's own columns
	// override.
	Limits backup.Limits
	// RateLimits false (RATE_LIMITS=off) turns every rate limit off, the
	// tenants' own included; quotas stay.
	RateLimits bool
	// CacheTTL is how long Resolve may answer from what it read of a tenant
	// (CACHE_TTL): an operator's change reaches every replica within it.
	// Zero reads the tenant from the database on every request.
	CacheTTL time.Duration
}

// Directory resolves and administers tenants.
type Directory struct {
	store Store
	cfg   Config
	now   func() time.Time
	// resolved holds Resolve's answers by slug: a served tenant, or nil for
	// a disabled one. Unknown slugs are not held, so a new tenant is served
	// from its first request.
	resolved *cache.Cache[string, *backup.Tenant]
}

// cachedTenants bounds the cache; a deployment serves a handful of tenants.
const cachedTenants = 1024

// NewDirectory returns a Directory.
func NewDirectory(store Store, cfg Config, now func() time.Time) *Directory {
	return &Directory{store: store, cfg: cfg, now: now, resolved: cache.New[string, *backup.Tenant](cfg.CacheTTL, cachedTenants)}
}

var errUnknownTenant = backup.Errorf(backup.ENOTFOUND, "unknown or disabled tenant")

// Resolve returns the tenant a request addresses by slug. Unknown, disabled
// and malformed slugs are all "not found", so probing tells nothing.
//
// Its answers are held for CacheTTL: the query, and for a tenant other than
// the default the unsealing of its key, would otherwise cost every request.
func (d *Directory) Resolve(ctx context.Context, slug string) (*backup.Tenant, error) {
	now := d.now()
	if t, ok := d.resolved.Get(slug, now); ok {
		if t == nil {
			return nil, errUnknownTenant
		}
		return t, nil
	}
	r, err := d.find(ctx, slug)
	if err != nil {
		return nil, err
	}
	if r.DisabledAt != nil {
		d.resolved.Put(slug, nil, now, time.Time{})
		return nil, errUnknownTenant
	}
	key, err := d.serverKey(r)
	if err != nil {
		return nil, err
	}
	t := &backup.Tenant{ID: r.ID, Slug: r.Slug, ServerKey: key, Labels: backup.NewLabelPolicy(r.Labels), Limits: d.limits(r.Limits), VSSAuth: r.VSSAuth}
	d.resolved.Put(slug, t, now, time.Time{})
	return t, nil
}

// limits merges a tenant's own limits over the server's.
func (d *Directory) limits(own backup.LimitOverrides) backup.Limits {
	l := d.cfg.Limits
	pick := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	pick32 := func(dst *int64, v *int32) {
		if v != nil {
			*dst = int64(*v)
		}
	}
	pick(&l.QuotaBytes, own.QuotaBytes)
	pick32(&l.QuotaObjects, own.QuotaObjects)
	pick32(&l.AddressPerMinute, own.RatePerAddressPerMinute)
	pick32(&l.NodePerMinute, own.RatePerNodePerMinute)
	pick32(&l.NewNodesPerAddressPerHour, own.NewNodesPerAddressPerHour)
	if !d.cfg.RateLimits {
		l.AddressPerMinute, l.NodePerMinute, l.NewNodesPerAddressPerHour = 0, 0, 0
	}
	return l
}

// Find returns a tenant, disabled or not, without its server key: for an
// operator's commands, which sign nothing.
func (d *Directory) Find(ctx context.Context, slug string) (*backup.Tenant, error) {
	r, err := d.find(ctx, slug)
	if err != nil {
		return nil, err
	}
	return &backup.Tenant{ID: r.ID, Slug: r.Slug, Labels: backup.NewLabelPolicy(r.Labels), Limits: d.limits(r.Limits), VSSAuth: r.VSSAuth}, nil
}

func (d *Directory) find(ctx context.Context, slug string) (backup.TenantRecord, error) {
	if !slugPattern.MatchString(slug) {
		return backup.TenantRecord{}, errUnknownTenant
	}
	r, err := d.store.TenantBySlug(ctx, slug)
	if errors.Is(err, backup.ErrNotFound) {
		return backup.TenantRecord{}, errUnknownTenant
	}
	return r, err
}

func (d *Directory) serverKey(r backup.TenantRecord) (*btcec.PrivateKey, error) {
	if r.ID == backup.DefaultTenant {
		if d.cfg.DefaultKey == nil {
			return nil, errors.New("no server key configured for the default tenant")
		}
		return d.cfg.DefaultKey, nil
	}
	if d.cfg.KEK == nil {
		return nil, backup.Errorf(backup.EUNAVAILABLE, "tenant %q is not served: this server has no KEY_ENCRYPTION_KEY", r.Slug)
	}
	secret, err := open(d.cfg.KEK, r.SecretSealed, r.Slug)
	if err != nil {
		return nil, err
	}
	key, pub := btcec.PrivKeyFromBytes(secret)
	if !bytes.Equal(pub.SerializeCompressed(), r.PublicKey) {
		return nil, errors.New("tenant " + r.Slug + ": sealed secret does not match the stored public key")
	}
	return key, nil
}

// CheckKeys opens the server key of every enabled tenant, so a server
// started with the wrong KEY_ENCRYPTION_KEY refuses to start instead of
// answering 500 to every request of those tenants. Without a
// KEY_ENCRYPTION_KEY no tenant but the default is served (by design: their
// requests get 503), and unserved names the enabled tenants this leaves out.
func (d *Directory) CheckKeys(ctx context.Context) (unserved []string, err error) {
	ts, err := d.store.TenantList(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range ts {
		if s.ID == backup.DefaultTenant || s.DisabledAt != nil {
			continue
		}
		if d.cfg.KEK == nil {
			unserved = append(unserved, s.Slug)
			continue
		}
		r, err := d.store.TenantBySlug(ctx, s.Slug)
		if err != nil {
			return nil, err
		}
		if _, err := d.serverKey(r); err != nil {
			return nil, fmt.Errorf("%w: start with the KEY_ENCRYPTION_KEY tenant %q was added with, or disable the tenant (server tenant disable %s)", err, s.Slug, s.Slug)
		}
	}
	return unserved, nil
}

// Create adds a tenant with a new server key pair and returns it; the
// public key is what the tenant's app must pin.
func (d *Directory) Create(ctx context.Context, slug, name string) (backup.TenantRecord, error) {
	if !slugPattern.MatchString(slug) {
		return backup.TenantRecord{}, backup.Errorf(backup.EINVALID, "slug %q must be 1 to 32 of a-z, 0-9 and -", slug)
	}
	if name == "" {
		return backup.TenantRecord{}, backup.Errorf(backup.EINVALID, "a tenant needs a name (--name)")
	}
	if d.cfg.KEK == nil {
		return backup.TenantRecord{}, backup.Errorf(backup.EINVALID, "KEY_ENCRYPTION_KEY is not set: a tenant's server key cannot be stored without it")
	}
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return backup.TenantRecord{}, err
	}
	sealed, err := seal(d.cfg.KEK, key.Serialize(), slug)
	if err != nil {
		return backup.TenantRecord{}, err
	}
	r := backup.TenantRecord{Slug: slug, Name: name, PublicKey: key.PubKey().SerializeCompressed(), SecretSealed: sealed, CreatedAt: d.now()}
	r.ID, err = d.store.TenantCreate(ctx, r)
	if backup.ErrorCode(err) == backup.ECONFLICT {
		return backup.TenantRecord{}, backup.Errorf(backup.ECONFLICT, "tenant %q already exists", slug)
	}
	if err != nil {
		return backup.TenantRecord{}, err
	}
	return r, nil
}

// List returns every tenant.
func (d *Directory) List(ctx context.Context) ([]backup.TenantSummary, error) {
	return d.store.TenantList(ctx)
}

// Show returns one tenant.
func (d *Directory) Show(ctx context.Context, slug string) (backup.TenantRecord, error) {
	r, err := d.store.TenantBySlug(ctx, slug)
	if errors.Is(err, backup.ErrNotFound) {
		return backup.TenantRecord{}, backup.Errorf(backup.ENOTFOUND, "no tenant %q", slug)
	}
	return r, err
}

// SetDisabled disables or re-enables a tenant. A disabled tenant's app gets
// 404 for everything; its data stays.
func (d *Directory) SetDisabled(ctx context.Context, slug string, disabled bool) error {
	if slug == backup.DefaultTenantSlug {
		return backup.Errorf(backup.EINVALID, "the default tenant cannot be disabled")
	}
	var at *time.Time
	if disabled {
		now := d.now()
		at = &now
	}
	found, err := d.store.TenantSetDisabled(ctx, slug, at)
	d.resolved.Delete(slug)
	if err == nil && !found {
		return backup.Errorf(backup.ENOTFOUND, "no tenant %q", slug)
	}
	return err
}

// AddLabel lets a tenant's apps store label, listed under group, from the
// next request on.
func (d *Directory) AddLabel(ctx context.Context, slug, label, group string) error {
	if err := backup.ValidateNewLabel(label); err != nil {
		return err
	}
	g, err := backup.ParseLabelGroup(group)
	if err != nil {
		return err
	}
	found, err := d.store.TenantLabelAdd(ctx, slug, label, g, d.now())
	d.resolved.Delete(slug)
	if err == nil && !found {
		return backup.Errorf(backup.ENOTFOUND, "no tenant %q", slug)
	}
	if backup.ErrorCode(err) == backup.ECONFLICT {
		return backup.Errorf(backup.ECONFLICT, "tenant %q already has label %q", slug, label)
	}
	return err
}

// SetVSSAuth chooses how a tenant's VSS requests prove their user: scheme
// signature or none without a key, jwt with the PEM public key of the
// tenant's token issuer (checked as the server will use it). Every replica
// uses it within CACHE_TTL.
func (d *Directory) SetVSSAuth(ctx context.Context, slug string, scheme backup.VSSAuthScheme, jwtPublicKeyPEM string) error {
	a := backup.VSSAuth{Scheme: scheme}
	switch scheme {
	case backup.VSSAuthSignature, backup.VSSAuthNone:
		if jwtPublicKeyPEM != "" {
			return backup.Errorf(backup.EINVALID, "a public key goes only with the jwt scheme")
		}
	case backup.VSSAuthJWT:
		if _, err := vssauth.NewJWT([]byte(jwtPublicKeyPEM), d.now); err != nil {
			return backup.Errorf(backup.EINVALID, "the jwt scheme needs the PEM public key of the tenant's token issuer: %v", err)
		}
		a.JWTPublicKey = jwtPublicKeyPEM
	default:
		return backup.Errorf(backup.EINVALID, "VSS authorization %q: want signature, jwt or none", scheme)
	}
	found, err := d.store.TenantSetVSSAuth(ctx, slug, a)
	d.resolved.Delete(slug)
	if err == nil && !found {
		return backup.Errorf(backup.ENOTFOUND, "no tenant %q", slug)
	}
	return err
}
