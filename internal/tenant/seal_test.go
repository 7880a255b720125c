package tenant

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSealBindsTheSlug(t *testing.T) {
	t.Parallel()
	kek := bytes.Repeat([]byte{7}, 32)
	secret := bytes.Repeat([]byte{9}, 32)
	sealed, err := seal(kek, secret, "acme")
	require.NoError(t, err)
	require.Len(t, sealed, 12+32+16)
	require.NotContains(t, string(sealed), string(secret))

	got, err := open(kek, sealed, "acme")
	require.NoError(t, err)
	require.Equal(t, secret, got)

	_, err = open(kek, sealed, "zeta")
	require.Error(t, err, "a sealed secret moved to another tenant's row must not open")
	_, err = open(bytes.Repeat([]byte{8}, 32), sealed, "acme")
	require.Error(t, err, "wrong key-encryption key")
	_, err = open(kek, sealed[:20], "acme")
	require.Error(t, err)

	again, err := seal(kek, secret, "acme")
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "fresh nonce each time")
}
