package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRoutePolicies pins who may call what: a new route must be added here
// with its policy, and a route cannot silently lose its token check.
func TestRoutePolicies(t *testing.T) {
	t.Parallel()
	var want []Route
	for _, prefix := range []string{"/v1", "/t/:tenant/v1"} {
		want = append(want,
			Route{"GET", prefix + "/status", PolicyPublic},
			Route{"POST", prefix + "/auth/challenge", PolicyLogin},
			Route{"POST", prefix + "/auth/response", PolicyLogin},
			Route{"POST", prefix + "/persist", PolicySigned},
			Route{"GET", prefix + "/list", PolicyRead},
			Route{"GET", prefix + "/retrieve", PolicyRead},
			Route{"GET", prefix + "/versions", PolicyToken},
			Route{"DELETE", prefix + "/account", PolicyToken},
		)
	}
	for _, prefix := range []string{"/vss", "/t/:tenant/vss"} {
		want = append(want,
			Route{"POST", prefix + "/getObject", PolicyVSS},
			Route{"POST", prefix + "/putObjects", PolicyVSS},
			Route{"POST", prefix + "/deleteObject", PolicyVSS},
			Route{"POST", prefix + "/listKeyVersions", PolicyVSS},
		)
	}
	require.Equal(t, want, Routes())
}

// TestEveryDomainCodeHasAStatus pins the status of every domain code: the
// apps act on the status (a 401 logs in again, a 429 waits), so a code
// mapped to another status is a change of the wire.
func TestEveryDomainCodeHasAStatus(t *testing.T) {
	t.Parallel()
	require.Equal(t, map[string]int{
		"invalid":      http.StatusBadRequest,
		"unauthorized": http.StatusUnauthorized,
		"not_found":    http.StatusNotFound,
		"conflict":     http.StatusConflict,
		"too_large":    http.StatusRequestEntityTooLarge,
		"quota":        http.StatusForbidden,
		"rate_limited": http.StatusTooManyRequests,
		"unavailable":  http.StatusServiceUnavailable,
		"internal":     http.StatusInternalServerError,
		"no_such_key":  http.StatusNotFound,
	}, statusByCode)
}
