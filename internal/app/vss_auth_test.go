package app_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/config"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/tenant"
	"ldkbackup/internal/vssauth"
	"ldkbackup/internal/vssclient"
	"ldkbackup/internal/vsspb"
)

// setVSSAuth chooses a tenant's VSS scheme as `server tenant vss-auth` does.
func (h *harness) setVSSAuth(slug string, scheme backup.VSSAuthScheme, pemKey string) {
	h.t.Helper()
	require.NoError(h.t, tenant.NewDirectory(postgres.NewStore(h.pool), tenant.Config{}, time.Now).SetVSSAuth(context.Background(), slug, scheme, pemKey))
}

func signedClient(h *harness, prefix string, key *btcec.PrivateKey) *vssclient.Client {
	return vssclient.New(h.url+prefix, h.http, vssclient.Signature(key, h.clock.Now))
}

func headerClient(h *harness, prefix, authorization string) *vssclient.Client {
	return vssclient.New(h.url+prefix, h.http, vssclient.Fixed(http.Header{"Authorization": {authorization}}))
}

// TestVSSSignatureAuth: by default every tenant authorizes VSS requests as
// ldk-node signs them; the user is the key. Expired, future-dated,
// wrong-key, high-S and malformed headers are refused with AUTH and change
// nothing; a header older than one its key already used is refused (the
// replay guard).
func TestVSSSignatureAuth(t *testing.T) {
	t.Parallel()
	h := newAuthHarness(t)
	h.addTenant("acme")
	h.clock.Freeze()
	ctx := context.Background()
	alice, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	bob, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	a := signedClient(h, "/vss", alice)
	put := &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: items(kv("k", "alice's", 0))}
	require.NoError(t, a.PutObjects(ctx, put))
	got, err := a.GetObject(ctx, &vsspb.GetObjectRequest{StoreId: "s", Key: "k"})
	require.NoError(t, err)
	require.Equal(t, "alice's", string(got.Value.Value))
	var token string
	require.NoError(t, h.pool.QueryRow(ctx, `SELECT user_token FROM vss_users`).Scan(&token))
	require.Equal(t, hex.EncodeToString(alice.PubKey().SerializeCompressed()), token, "the user is the key, lowercase hex")

	// Bob, and alice under another tenant, are other users.
	_, err = signedClient(h, "/vss", bob).GetObject(ctx, &vsspb.GetObjectRequest{StoreId: "s", Key: "k"})
	require.ErrorIs(t, err, vssclient.ErrNoSuchKey)
	_, err = signedClient(h, "/t/acme/vss", alice).GetObject(ctx, &vsspb.GetObjectRequest{StoreId: "s", Key: "k"})
	require.ErrorIs(t, err, vssclient.ErrNoSuchKey)

	now := h.clock.Now()
	good := vssauth.SignatureHeader(alice, now)
	highS := func() string {
		sig, _ := hex.DecodeString(good[66:194])
		s := new(big.Int).SetBytes(sig[32:])
		s.Sub(btcec.S256().N, s)
		s.FillBytes(sig[32:])
		return good[:66] + hex.EncodeToString(sig) + good[194:]
	}()
	before := h.snapshot()
	for name, header := range map[string]string{
		"expired":      vssauth.SignatureHeader(alice, now.Add(-2*time.Hour)),
		"future-dated": vssauth.SignatureHeader(alice, now.Add(2*time.Hour)),
		"wrong key":    good[:66] + vssauth.SignatureHeader(bob, now)[66:],
		"high-S":       highS,
		"truncated":    good[:150],
		"bearer":       "Bearer " + good,
		"empty":        "",
	} {
		err := headerClient(h, "/vss", header).PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: items(kv("k", "forged", -1))})
		e := requireStatus(t, err, http.StatusUnauthorized, vsspb.ErrorCode_AUTH_EXCEPTION)
		t.Logf("%s: %s", name, e.Message)
	}
	require.Equal(t, before, h.snapshot())

	// The replay guard: once alice used a header three minutes newer, the
	// older one (captured, say) no longer works; the newer one still does.
	old := vssauth.SignatureHeader(alice, now)
	h.clock.Advance(3 * time.Minute)
	require.NoError(t, a.PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: items(kv("k", "new", -1))}))
	_, err = headerClient(h, "/vss", old).GetObject(ctx, &vsspb.GetObjectRequest{StoreId: "s", Key: "k"})
	requireStatus(t, err, http.StatusUnauthorized, vsspb.ErrorCode_AUTH_EXCEPTION)
	// The same header twice (the real client repeats them within a second)
	// is fine.
	same := headerClient(h, "/vss", vssauth.SignatureHeader(alice, h.clock.Now()))
	for range 2 {
		_, err = same.GetObject(ctx, &vsspb.GetObjectRequest{StoreId: "s", Key: "k"})
		require.NoError(t, err)
	}
}

// jwtIssuer is an app's login service: an RSA key that signs RS256 tokens.
type jwtIssuer struct {
	key *rsa.PrivateKey
	pem string
}

func newJWTIssuer(t *testing.T) jwtIssuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	return jwtIssuer{key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
}

func (i jwtIssuer) token(t *testing.T, sub string, exp time.Time) string {
	enc := base64.RawURLEncoding
	claims, err := json.Marshal(map[string]any{"sub": sub, "exp": exp.Unix()})
	require.NoError(t, err)
	signing := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, sum[:])
	require.NoError(t, err)
	return signing + "." + enc.EncodeToString(sig)
}

// TestVSSJWTAuth: a tenant set to jwt authorizes RS256 bearer tokens of the
// issuer key the operator gave it; the user is the token's subject. Other
// tenants keep their own scheme.
func TestVSSJWTAuth(t *testing.T) {
	t.Parallel()
	h := newAuthHarness(t)
	h.addTenant("acme")
	issuer := newJWTIssuer(t)
	h.setVSSAuth("acme", backup.VSSAuthJWT, issuer.pem)
	ctx := context.Background()
	now := h.clock.Now()

	u1 := vssclient.New(h.url+"/t/acme/vss", h.http, vssclient.Bearer(issuer.token(t, "user-1", now.Add(time.Hour))))
	require.NoError(t, u1.PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: items(kv("k", "one's", 0))}))
	var token string
	require.NoError(t, h.pool.QueryRow(ctx, `SELECT user_token FROM vss_users`).Scan(&token))
	require.Equal(t, "user-1", token)
	u2 := vssclient.New(h.url+"/t/acme/vss", h.http, vssclient.Bearer(issuer.token(t, "user-2", now.Add(time.Hour))))
	_, err := u2.GetObject(ctx, &vsspb.GetObjectRequest{StoreId: "s", Key: "k"})
	require.ErrorIs(t, err, vssclient.ErrNoSuchKey)

	before := h.snapshot()
	other := newJWTIssuer(t)
	key, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	for name, c := range map[string]*vssclient.Client{
		"expired":              vssclient.New(h.url+"/t/acme/vss", h.http, vssclient.Bearer(issuer.token(t, "user-1", now.Add(-2*time.Minute)))),
		"another issuer":       vssclient.New(h.url+"/t/acme/vss", h.http, vssclient.Bearer(other.token(t, "user-1", now.Add(time.Hour)))),
		"a signature header":   signedClient(h, "/t/acme/vss", key),
		"a JWT at the default": vssclient.New(h.url+"/vss", h.http, vssclient.Bearer(issuer.token(t, "user-1", now.Add(time.Hour)))),
	} {
		err := c.PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: items(kv("k", "forged", -1))})
		e := requireStatus(t, err, http.StatusUnauthorized, vsspb.ErrorCode_AUTH_EXCEPTION)
		t.Logf("%s: %s", name, e.Message)
	}
	require.Equal(t, before, h.snapshot())
	// The default tenant still takes signatures.
	require.NoError(t, signedClient(h, "/vss", key).PutObjects(ctx, &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: items(kv("k", "v", 0))}))
}

// TestVSSNoAuth: "none" is served only by a server that allows it
// (development), and then every client is one user.
func TestVSSNoAuth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	put := &vsspb.PutObjectRequest{StoreId: "s", TransactionItems: items(kv("k", "v", 0))}

	h := newAuthHarness(t)
	h.addTenant("dev")
	h.setVSSAuth("dev", backup.VSSAuthNone, "")
	err := vssclient.New(h.url+"/t/dev/vss", h.http, nil).PutObjects(ctx, put)
	e := requireStatus(t, err, http.StatusUnauthorized, vsspb.ErrorCode_AUTH_EXCEPTION)
	require.Contains(t, e.Message, "VSS_ALLOW_NO_AUTH")
	require.Zero(t, h.count("vss_objects"))

	d := newAuthHarness(t, func(c *config.Config) { c.VSSAllowNoAuth = true })
	d.addTenant("dev")
	d.setVSSAuth("dev", backup.VSSAuthNone, "")
	require.NoError(t, vssclient.New(d.url+"/t/dev/vss", d.http, nil).PutObjects(ctx, put))
	got, err := vssclient.New(d.url+"/t/dev/vss", d.http, vssclient.Bearer("anything")).GetObject(ctx, &vsspb.GetObjectRequest{StoreId: "s", Key: "k"})
	require.NoError(t, err)
	require.Equal(t, "v", string(got.Value.Value), "every client is the one shared user")
	// The default tenant is still signature: no header is refused.
	err = vssclient.New(d.url+"/vss", d.http, nil).PutObjects(ctx, put)
	requireStatus(t, err, http.StatusUnauthorized, vsspb.ErrorCode_AUTH_EXCEPTION)
}
