package client

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

const (
	nonceSize = 12
	tagSize   = 16
	keySize   = 32
)

// newAEAD returns AES-256-GCM whose Seal output is nonce(12)||ciphertext||tag(16),
// the layout both apps write (Android prepends the nonce to doFinal's
// ciphertext+tag; iOS uses CryptoKit's SealedBox.combined).
func newAEAD(key []byte) (cipher.AEAD, error) {
	// The apps use the 32-byte node secret as an AES-256 key; a shorter key
	// would silently select AES-128/192 and never decrypt an app's backup.
	if len(key) != keySize {
		return nil, fmt.Errorf("client: encryption key is %d bytes, want %d", len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// Encrypt seals plaintext under key with a fresh random nonce, so encrypting
// the same plaintext twice never gives the same bytes.
func Encrypt(key, plaintext []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(make([]byte, 0, nonceSize+len(plaintext)+tagSize), nil, plaintext, nil), nil
}

// Decrypt opens a blob made by Encrypt or by either app.
func Decrypt(key, blob []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(blob) < nonceSize+tagSize {
		return nil, fmt.Errorf("client: decrypt: blob is %d bytes, shorter than nonce and tag", len(blob))
	}
	plain, err := aead.Open(nil, nil, blob, nil)
	if err != nil {
		return nil, errors.Join(errors.New("client: decrypt failed"), err)
	}
	return plain, nil
}
