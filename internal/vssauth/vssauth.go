// Package vssauth authenticates requests of LDK's VSS protocol: it turns a
// request's headers into the user token whose data the request may touch.
// Three schemes, as in lightningdevkit/vss-server: ldk-node's default
// signature header (NewSignature), RS256 bearer tokens from an issuer the
// operator trusts (NewJWT), and none at all for development (NewNone).
// docs/vss-auth.md describes the choices and what stays replayable.
package vssauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Authorizer turns a VSS request's headers into the user token the request
// acts as.
type Authorizer interface {
	Authorize(ctx context.Context, h http.Header) (userToken string, err error)
}

// ErrUnauthorized is wrapped by every refusal; the error's message says why
// (safe to show to the client). Any other error is a server fault (the
// replay guard's store failing), not the client's.
var ErrUnauthorized = errors.New("unauthorized")

// MaxUserTokenChars is the longest user token the reference's store holds
// (user_token character varying(120), and not empty): a JWT whose subject is
// longer is refused here rather than failing in the database.
const MaxUserTokenChars = 120

// refuse returns an error that wraps ErrUnauthorized with a reason for the
// client.
func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthorized, fmt.Sprintf(format, args...))
}

// authorizationHeader returns the request's one Authorization header. Two
// are refused: the reference would use one of them, and which one is an
// accident of its header map.
func authorizationHeader(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", refuse("authorization header not found")
	case 1:
		return values[0], nil
	default:
		return "", refuse("more than one authorization header")
	}
}

// UnauthenticatedUserToken is the user token of every request NewNone lets
// through, the same as the reference's NoopAuthorizer ("unauth-user").
const UnauthenticatedUserToken = "unauth-user"

type none struct{}

// NewNone returns an Authorizer for development only: it ignores the headers
// and answers UnauthenticatedUserToken for every request, as the reference's
// NoopAuthorizer does, so all clients share one user's data (separated only
// by store_id). Never use it where more than one wallet connects.
func NewNone() Authorizer { return none{} }

func (none) Authorize(context.Context, http.Header) (string, error) {
	return UnauthenticatedUserToken, nil
}
