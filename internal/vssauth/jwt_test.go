package vssauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type jwtVectors struct {
	Now               int64  `json:"now"`
	PublicKeyPEM      string `json:"public_key_pem"`
	PublicKeyPKCS1PEM string `json:"public_key_pkcs1_pem"`
	ShortPublicKeyPEM string `json:"short_public_key_pem"`
	Tokens            []struct {
		Name   string `json:"name"`
		Accept bool   `json:"accept"`
		Sub    string `json:"sub"`
		Token  string `json:"token"`
	} `json:"tokens"`
}

func readJWTVectors(t testing.TB) jwtVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/jwt-vectors.json")
	require.NoError(t, err)
	var v jwtVectors
	require.NoError(t, json.Unmarshal(raw, &v))
	require.NotEmpty(t, v.Tokens)
	return v
}

// Tokens and keys made by Node's crypto (testdata/gen), judged under the
// reference's rules.
func TestJWTVectors(t *testing.T) {
	t.Parallel()
	v := readJWTVectors(t)
	for _, keyPEM := range []string{v.PublicKeyPEM, v.PublicKeyPKCS1PEM} {
		a, err := NewJWT([]byte(keyPEM), fixedClock(time.Unix(v.Now, 0)))
		require.NoError(t, err)
		for _, tok := range v.Tokens {
			token, err := a.Authorize(context.Background(), authHeader("Bearer "+tok.Token))
			if tok.Accept {
				require.NoError(t, err, tok.Name)
				require.Equal(t, tok.Sub, token, tok.Name)
			} else {
				requireRefused(t, token, err, tok.Name)
			}
		}
	}
	_, err := NewJWT([]byte(v.ShortPublicKeyPEM), time.Now)
	require.ErrorContains(t, err, "1024 bits")
}

type jwtSetup struct {
	priv *rsa.PrivateKey
	now  time.Time
	a    Authorizer
}

func newJWTSetup(t *testing.T) jwtSetup {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	require.NoError(t, err)
	now := time.Unix(1764460800, 0)
	a, err := NewJWT(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), fixedClock(now))
	require.NoError(t, err)
	return jwtSetup{priv: priv, now: now, a: a}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// sign makes an RS256 JWT from raw header and claims JSON.
func (s jwtSetup) sign(t *testing.T, header, claims string) string {
	t.Helper()
	input := b64(header) + "." + b64(claims)
	d := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.priv, crypto.SHA256, d[:])
	require.NoError(t, err)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestJWTExpiry(t *testing.T) {
	t.Parallel()
	s := newJWTSetup(t)
	const rs = `{"alg":"RS256","typ":"JWT"}`
	for name, tc := range map[string]struct {
		exp    string
		accept bool
	}{
		"in the future":        {itoa(s.now.Unix() + 1), true},
		"now":                  {itoa(s.now.Unix()), true},
		"past by exactly skew": {itoa(s.now.Unix() - 60), true},
		"past beyond skew":     {itoa(s.now.Unix() - 61), false},
		"max u64 saturates":    {"18446744073709551615", true},
		"beyond u64":           {"18446744073709551616", false},
		"zero":                 {"0", false},
		"exponent":             {"1.8e9", false},
		"null":                 {"null", false},
		"string":               {`"` + itoa(s.now.Unix()+60) + `"`, false},
	} {
		token, err := s.a.Authorize(context.Background(), authHeader("Bearer "+s.sign(t, rs, `{"sub":"u","exp":`+tc.exp+`}`)))
		if tc.accept {
			require.NoError(t, err, name)
			require.Equal(t, "u", token, name)
		} else {
			requireRefused(t, token, err, name)
		}
	}
}

func TestJWTRefusals(t *testing.T) {
	t.Parallel()
	s := newJWTSetup(t)
	const rs = `{"alg":"RS256"}`
	claims := `{"sub":"u","exp":` + itoa(s.now.Unix()+60) + `}`
	good := s.sign(t, rs, claims)
	parts := strings.Split(good, ".")
	cases := map[string][]string{
		"no header":            nil,
		"two headers":          {"Bearer " + good, "Bearer " + good},
		"no scheme":            {good},
		"basic scheme":         {"Basic " + good},
		"bearer without token": {"Bearer "},
		"two parts":            {"Bearer " + parts[0] + "." + parts[1]},
		"four parts":           {"Bearer " + good + ".x"},
		"header not base64":    {"Bearer !" + good[1:]},
		"padded signature":     {"Bearer " + good + "="},
		"header not JSON":      {"Bearer " + s.sign(t, `RS256`, claims)},
		"alg not a string":     {"Bearer " + s.sign(t, `{"alg":256}`, claims)},
		"alg lowercase":        {"Bearer " + s.sign(t, `{"alg":"rs256"}`, claims)},
		"alg PS256":            {"Bearer " + s.sign(t, `{"alg":"PS256"}`, claims)},
		"alg none unsigned":    {"Bearer " + b64(`{"alg":"none"}`) + "." + parts[1] + "."},
		"signature truncated":  {"Bearer " + good[:len(good)-4]},
		"claims swapped":       {"Bearer " + parts[0] + "." + b64(`{"sub":"v","exp":`+itoa(s.now.Unix()+60)+`}`) + "." + parts[2]},
		"claims not JSON":      {"Bearer " + s.sign(t, rs, `sub=u`)},
		"claims an array":      {"Bearer " + s.sign(t, rs, `[1]`)},
		"sub null":             {"Bearer " + s.sign(t, rs, `{"sub":null,"exp":`+itoa(s.now.Unix()+60)+`}`)},
		"sub with NUL":         {"Bearer " + s.sign(t, rs, `{"sub":"a\u0000b","exp":`+itoa(s.now.Unix()+60)+`}`)},
		"aud empty string":     {"Bearer " + s.sign(t, rs, `{"sub":"u","aud":"","exp":`+itoa(s.now.Unix()+60)+`}`)},
		"too long":             {"Bearer " + s.sign(t, rs, `{"sub":"u","pad":"`+strings.Repeat("x", maxJWTLen)+`","exp":`+itoa(s.now.Unix()+60)+`}`)},
		"signature header":     {SignatureHeader(testKey(t, 7), s.now)},
	}
	for name, values := range cases {
		token, err := s.a.Authorize(context.Background(), authHeader(values...))
		requireRefused(t, token, err, name)
	}

	// And the good one passes, with the scheme in any case (RFC 7235).
	for _, scheme := range []string{"Bearer ", "bearer ", "BEARER "} {
		token, err := s.a.Authorize(context.Background(), authHeader(scheme+good))
		require.NoError(t, err)
		require.Equal(t, "u", token)
	}
	// A 120-character subject of multi-byte characters is within the limit.
	long := strings.Repeat("é", MaxUserTokenChars)
	token, err := s.a.Authorize(context.Background(), authHeader("Bearer "+s.sign(t, rs, `{"sub":"`+long+`","exp":`+itoa(s.now.Unix()+60)+`}`)))
	require.NoError(t, err)
	require.Equal(t, long, token)
}

func TestNewJWTKeys(t *testing.T) {
	t.Parallel()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(math.MaxInt32, 0),
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})

	now := time.Unix(1764460800, 0)
	a, err := NewJWT(certPEM, fixedClock(now))
	require.NoError(t, err, "a certificate's RSA key")
	s := jwtSetup{priv: priv, now: now, a: a}
	token, err := a.Authorize(context.Background(), authHeader("Bearer "+s.sign(t, `{"alg":"RS256"}`, `{"sub":"u","exp":`+itoa(now.Unix())+`}`)))
	require.NoError(t, err)
	require.Equal(t, "u", token)

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	require.NoError(t, err)
	privDER := x509.MarshalPKCS1PrivateKey(priv)
	for name, data := range map[string][]byte{
		"empty":          nil,
		"not PEM":        []byte("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
		"EC key":         pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}),
		"private key":    pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: privDER}),
		"garbage body":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("nope")}),
		"two PEM blocks": append(append([]byte{}, certPEM...), certPEM...),
	} {
		a, err := NewJWT(data, time.Now)
		require.Error(t, err, name)
		require.Nil(t, a, name)
	}
}
