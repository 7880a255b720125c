package vssauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// JWTExpirySkew is how long after its exp a token is still accepted, the
// reference's CLOCK_SKEW_TOLERANCE_SEC.
const JWTExpirySkew = 60 * time.Second

// MinRSABits is the smallest issuer key NewJWT accepts, as the reference.
const MinRSABits = 2048

// maxJWTLen bounds the work an unauthenticated header can cause; the
// tokens of LNURL-auth issuers are a few hundred bytes.
const maxJWTLen = 8 << 10

type jwtAuthorizer struct {
	key *rsa.PublicKey
	now func() time.Time
}

// NewJWT returns the Authorizer of bearer tokens (Authorization: Bearer
// <JWT>) signed with RS256 by the issuer whose key publicKeyPEM holds: a
// PEM "PUBLIC KEY" (PKIX), "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE"
// block of an RSA key of at least MinRSABits. As the reference
// (auth-impls/src/jwt.rs):
//   - the header's alg must be "RS256"; kid and typ are not read (there is
//     one issuer key);
//   - exp is required, a non-negative integer, and the token is refused once
//     now is more than JWTExpirySkew past it;
//   - sub is the user token;
//   - a token with an aud claim is refused (the reference cannot know which
//     audience to expect); nbf, iat and iss are not checked.
//
// Beyond the reference, a sub that is empty, longer than MaxUserTokenChars
// or holds a NUL is refused here instead of failing in the store.
func NewJWT(publicKeyPEM []byte, now func() time.Time) (Authorizer, error) {
	key, err := parseRSAPublicKeyPEM(publicKeyPEM)
	if err != nil {
		return nil, err
	}
	return &jwtAuthorizer{key: key, now: now}, nil
}

func parseRSAPublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("vssauth: JWT issuer key: no PEM block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("vssauth: JWT issuer key: more than one PEM block")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("vssauth: JWT issuer key: PEM block %q is not a public key or certificate", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("vssauth: JWT issuer key: %w", err)
	}
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("vssauth: JWT issuer key: %T is not an RSA key (only RS256 is supported)", pub)
	}
	if bits := key.N.BitLen(); bits < MinRSABits {
		return nil, fmt.Errorf("vssauth: JWT issuer key: RSA key of %d bits; at least %d required", bits, MinRSABits)
	}
	return key, nil
}

var rawURL = base64.RawURLEncoding.Strict()

func (a *jwtAuthorizer) Authorize(_ context.Context, h http.Header) (string, error) {
	v, err := authorizationHeader(h)
	if err != nil {
		return "", err
	}
	// RFC 7235: the scheme is case-insensitive (the reference wants
	// "Bearer " exactly; vss-client sends exactly that).
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", refuse("authorization header is not a bearer token")
	}
	token := v[len(scheme):]
	if len(token) > maxJWTLen {
		return "", refuse("bearer token is too long")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", refuse("bearer token does not have three parts")
	}
	headerJSON, err := rawURL.DecodeString(parts[0])
	if err != nil {
		return "", refuse("bearer token header is not base64url")
	}
	var header struct {
		Alg *string `json:"alg"`
	}
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return "", refuse("bearer token header is not a JSON object")
	}
	if header.Alg == nil || *header.Alg != "RS256" {
		return "", refuse("bearer token alg is not RS256")
	}
	sig, err := rawURL.DecodeString(parts[2])
	if err != nil {
		return "", refuse("bearer token signature is not base64url")
	}
	digest := sha256.Sum256([]byte(token[:len(parts[0])+1+len(parts[1])]))
	if err := rsa.VerifyPKCS1v15(a.key, crypto.SHA256, digest[:], sig); err != nil {
		return "", refuse("bearer token signature is invalid")
	}
	claimsJSON, err := rawURL.DecodeString(parts[1])
	if err != nil {
		return "", refuse("bearer token claims are not base64url")
	}
	sub, err := checkClaims(claimsJSON, a.now())
	if err != nil {
		return "", err
	}
	return sub, nil
}

// checkClaims applies the reference's claim rules to a signed token's
// claims and returns its subject.
func checkClaims(claimsJSON []byte, now time.Time) (string, error) {
	var claims struct {
		Sub *string         `json:"sub"`
		Exp json.RawMessage `json:"exp"`
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(claimsJSON, &claims); err != nil {
		return "", refuse("bearer token claims are not a JSON object of the expected types")
	}
	if claims.Exp == nil {
		return "", refuse("bearer token has no exp claim")
	}
	// The reference reads exp as a u64: digits only, no fraction or sign.
	exp, err := strconv.ParseUint(string(claims.Exp), 10, 64)
	if err != nil {
		return "", refuse("bearer token exp is not a non-negative integer")
	}
	skew := uint64(JWTExpirySkew / time.Second)
	limit := exp + skew
	if limit < exp { // saturate as the reference does
		limit = math.MaxUint64
	}
	if n := now.Unix(); n > 0 && uint64(n) > limit {
		return "", refuse("bearer token is expired")
	}
	if claims.Aud != nil && !bytes.Equal(claims.Aud, []byte("null")) {
		return "", refuse("bearer token has an aud claim, which this server does not expect")
	}
	if claims.Sub == nil {
		return "", refuse("bearer token has no sub claim")
	}
	sub := *claims.Sub
	if sub == "" || utf8.RuneCountInString(sub) > MaxUserTokenChars || strings.ContainsRune(sub, 0) {
		return "", refuse("bearer token sub must be 1 to %d characters without NUL", MaxUserTokenChars)
	}
	return sub, nil
}
