package client

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

func testKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	for _, size := range []int{0, 1, 15, 16, 17, 1000, 1 << 20} {
		plain := bytes.Repeat([]byte{0xab}, size)
		blob, err := Encrypt(key, plain)
		require.NoError(t, err)
		require.Len(t, blob, 12+size+16, "nonce(12)||ciphertext||tag(16)")
		got, err := Decrypt(key, blob)
		require.NoError(t, err)
		require.True(t, bytes.Equal(plain, got), "size %d", size)
	}
}

func TestEncryptFreshNonce(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	plain := []byte("channel manager")
	a, err := Encrypt(key, plain)
	require.NoError(t, err)
	b, err := Encrypt(key, plain)
	require.NoError(t, err)
	require.NotEqual(t, a[:12], b[:12], "nonces must differ")
	require.NotEqual(t, a, b, "a retried persist must never send the same bytes")
}

// The apps build the blob by hand (Android: nonce + doFinal(ciphertext||tag);
// iOS: SealedBox.combined). Decrypt must open that layout, and Encrypt must
// produce it.
func TestAppBlobLayout(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	nonce := []byte("twelve bytes")
	plain := []byte("peers")
	appBlob := append(append([]byte{}, nonce...), gcm.Seal(nil, nonce, plain, nil)...)

	got, err := Decrypt(key, appBlob)
	require.NoError(t, err)
	require.Equal(t, plain, got)

	ours, err := Encrypt(key, plain)
	require.NoError(t, err)
	opened, err := gcm.Open(nil, ours[:12], ours[12:], nil)
	require.NoError(t, err)
	require.Equal(t, plain, opened)
}

func TestDecryptRejects(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	blob, err := Encrypt(key, []byte("payments_sent"))
	require.NoError(t, err)

	for i := range blob {
		tampered := bytes.Clone(blob)
		tampered[i] ^= 0x01
		_, err := Decrypt(key, tampered)
		require.Error(t, err, "flipped bit in byte %d", i)
	}
	_, err = Decrypt(testKey(t), blob)
	require.Error(t, err, "wrong key")
	for _, n := range []int{0, 1, 12, 27} {
		_, err := Decrypt(key, blob[:n])
		require.Error(t, err, "%d bytes", n)
	}
	_, err = Decrypt(key, blob[:len(blob)-1])
	require.Error(t, err, "truncated tag")
	_, err = Decrypt(key, append(bytes.Clone(blob), 0))
	require.Error(t, err, "trailing byte")
}

func TestEncryptRequiresAES256Key(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 24, 31, 33} {
		_, err := Encrypt(make([]byte, n), []byte("x"))
		require.Error(t, err, "%d-byte key", n)
		_, err = Decrypt(make([]byte, n), make([]byte, 40))
		require.Error(t, err, "%d-byte key", n)
	}
}
