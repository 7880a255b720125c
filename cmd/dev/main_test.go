package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDevKeyPairIsCreatedOnceAndKept(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/dev-server-key.env"
	secret, public, created, err := devKeyPair(path)
	require.NoError(t, err)
	require.True(t, created, "the first run creates it (and dev says so)")
	again, againPub, created, err := devKeyPair(path)
	require.NoError(t, err)
	require.False(t, created, "later runs keep it")
	require.Equal(t, []string{secret, public}, []string{again, againPub})
}
