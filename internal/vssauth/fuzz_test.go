package vssauth

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseSignatureHeader: any header value is either refused with
// ErrUnauthorized or splits into parts that re-encode to it; and the whole
// signature authorizer never panics and refuses only with ErrUnauthorized.
func FuzzParseSignatureHeader(f *testing.F) {
	v := readSignatureVectors(f)
	for _, vec := range v.Valid {
		f.Add(vec.Header)
	}
	for _, vec := range v.Invalid {
		f.Add(vec.Header)
	}
	good := v.Valid[0].Header
	for _, s := range []string{"", good[:66], good[:194], good + "0", strings.ToUpper(good), good[:194] + "18446744073709551616", good[:194] + "+1", "Bearer x.y.z"} {
		f.Add(s)
	}
	a := NewSignature(time.Hour, fixedClock(time.Unix(v.Now, 0)))
	f.Fuzz(func(t *testing.T, header string) {
		sh, err := ParseSignatureHeader(header)
		if err != nil {
			requireRefused(t, "", err)
		} else {
			got := hex.EncodeToString(sh.PubKey[:]) + hex.EncodeToString(sh.Signature[:]) + sh.TimeText
			if got != strings.ToLower(header[:194])+header[194:] {
				t.Fatalf("parse of %q re-encodes to %q", header, got)
			}
			if n, err := strconv.ParseUint(sh.TimeText, 10, 64); err != nil || n != sh.Time {
				t.Fatalf("time %q parsed as %d", sh.TimeText, sh.Time)
			}
		}
		token, err := a.Authorize(context.Background(), authHeader(header))
		if err != nil {
			requireRefused(t, token, err)
		} else if token != sh.UserToken() {
			t.Fatalf("accepted %q as %q", header, token)
		}
	})
}

// FuzzJWTAuthorize: the bearer-token authorizer never panics and refuses
// only with ErrUnauthorized.
func FuzzJWTAuthorize(f *testing.F) {
	v := readJWTVectors(f)
	for _, tok := range v.Tokens {
		f.Add("Bearer " + tok.Token)
	}
	f.Add("Bearer ..")
	f.Add("Bearer e30.e30.")
	a, err := NewJWT([]byte(v.PublicKeyPEM), fixedClock(time.Unix(v.Now, 0)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, err := a.Authorize(context.Background(), authHeader(header))
		if err != nil {
			requireRefused(t, token, err)
		}
	})
}
