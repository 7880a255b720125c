package api

import (
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
	require.Equal(t, want, Routes())
}

func TestEveryDomainCodeHasAStatus(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"invalid", "unauthorized", "not_found", "conflict", "too_large", "quota", "rate_limited", "unavailable", "internal"} {
		_, ok := statusByCode[code]
		require.True(t, ok, code)
	}
}
