package api

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRoutePolicies pins who may call what: a new route must be added here
// with its policy, and a route cannot silently lose its token check.
func TestRoutePolicies(t *testing.T) {
	t.Parallel()
	want := []Route{
		{"GET", "/v1/status", PolicyPublic},
		{"POST", "/v1/auth/challenge", PolicyPublic},
		{"POST", "/v1/auth/response", PolicyPublic},
		{"POST", "/v1/persist", PolicySigned},
		{"GET", "/v1/list", PolicyToken},
		{"GET", "/v1/retrieve", PolicyToken},
	}
	require.Equal(t, want, Routes())
}

func TestEveryDomainCodeHasAStatus(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"invalid", "unauthorized", "not_found", "conflict", "too_large", "unavailable", "internal"} {
		_, ok := statusByCode[code]
		require.True(t, ok, code)
	}
}
