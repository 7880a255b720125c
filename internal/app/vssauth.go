package app

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"ldkbackup/api"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/vssauth"
)

// vssAuthorizers builds each tenant's VSS authorizer from the scheme the
// operator chose for it (server tenant vss-auth), once per setting: a
// request finds it by its tenant, which the directory re-reads every
// CACHE_TTL, so a change reaches every replica within it.
type vssAuthorizers struct {
	window, slack time.Duration
	allowNone     bool
	now           func() time.Time
	store         *postgres.Store

	mu    sync.Mutex
	built map[backup.TenantID]builtAuthorizer
}

type builtAuthorizer struct {
	setting backup.VSSAuth
	a       api.VSSAuthorizer
}

func newVSSAuthorizers(cfg config.Config, store *postgres.Store, now func() time.Time) *vssAuthorizers {
	return &vssAuthorizers{window: cfg.VSSSignatureWindow, slack: cfg.VSSReplaySlack, allowNone: cfg.VSSAllowNoAuth,
		now: now, store: store, built: map[backup.TenantID]builtAuthorizer{}}
}

// For returns tenant t's authorizer.
func (v *vssAuthorizers) For(_ context.Context, t *backup.Tenant) (api.VSSAuthorizer, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b, ok := v.built[t.ID]; ok && b.setting == t.VSSAuth {
		return b.a, nil
	}
	var a vssauth.Authorizer
	switch t.VSSAuth.Scheme {
	case backup.VSSAuthSignature:
		if v.slack > 0 {
			a = vssauth.NewSignatureWithReplayGuard(v.window, v.now, v.store.VSSAuthMarks(t.ID), v.slack)
		} else {
			a = vssauth.NewSignature(v.window, v.now)
		}
	case backup.VSSAuthJWT:
		var err error
		if a, err = vssauth.NewJWT([]byte(t.VSSAuth.JWTPublicKey), v.now); err != nil {
			return nil, errors.New("tenant " + t.Slug + ": its VSS JWT public key: " + err.Error())
		}
	case backup.VSSAuthNone:
		if !v.allowNone {
			return nil, backup.Errorf(backup.EUNAUTHORIZED, "this tenant's VSS authorization is \"none\", which this server does not serve (VSS_ALLOW_NO_AUTH)")
		}
		a = vssauth.NewNone()
	default:
		return nil, errors.New("tenant " + t.Slug + ": unknown VSS authorization " + string(t.VSSAuth.Scheme))
	}
	b := builtAuthorizer{setting: t.VSSAuth, a: refusals{a}}
	v.built[t.ID] = b
	return b.a, nil
}

// refusals turns vssauth's refusals into the domain's, so the api answers
// them 401 with their message; any other error stays a server fault.
type refusals struct{ a vssauth.Authorizer }

func (r refusals) Authorize(ctx context.Context, h http.Header) (string, error) {
	token, err := r.a.Authorize(ctx, h)
	if errors.Is(err, vssauth.ErrUnauthorized) {
		return "", backup.Errorf(backup.EUNAUTHORIZED, "%s", err.Error())
	}
	return token, err
}
