package tenant

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// seal encrypts a tenant's server secret under the key-encryption key with
// AES-256-GCM: nonce(12) || ciphertext || tag(16). The slug is bound as
// associated data, so a sealed secret copied onto another tenant's row does
// not open there.
func seal(kek, secret []byte, slug string) ([]byte, error) {
	gcm, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	return gcm.Seal(nonce, nonce, secret, aad(slug)), nil
}

// open reverses seal.
func open(kek, sealed []byte, slug string) ([]byte, error) {
	gcm, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize()+gcm.Overhead() {
		return nil, errors.New("sealed secret is too short")
	}
	nonce, ct := sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():]
	secret, err := gcm.Open(nil, nonce, ct, aad(slug))
	if err != nil {
		return nil, fmt.Errorf("open the server secret of tenant %q (wrong KEY_ENCRYPTION_KEY?): %w", slug, err)
	}
	return secret, nil
}

func aad(slug string) []byte { return []byte("ldkbackup tenant server key:" + slug) }

func newGCM(kek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
