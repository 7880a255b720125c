// Package lnsig implements Lightning "signmessage" signatures, the format LND's
// signmessage and LDK's UtilMethods.sign produce: a recoverable compact ECDSA
// signature over SHA256(SHA256("Lightning Signed Message:" + message)), in
// z-base-32. Every signature in the backup protocol uses it.
package lnsig

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"

	"ldkbackup/internal/zbase32"
)

// BackupPrefix starts every message signed in the backup protocol, so a
// signature made for it cannot be replayed as some other signed message.
const BackupPrefix = "react-native-ldk backup server auth:"

// lnPrefix is prepended by signmessage itself before hashing.
const lnPrefix = "Lightning Signed Message:"

const (
	compactSigLen = 65
	// Header 27 + 4 ("compressed key") + recovery id 0..3. The apps and LND
	// only ever produce compressed-key signatures.
	minHeader = 31
	maxHeader = 34
)

var (
	// ErrMalformedSignature: not z-base-32, not 65 bytes, or a header byte
	// other than 31..34.
	ErrMalformedSignature = errors.New("lnsig: malformed signature")
	// ErrSignatureMismatch: the signature is well formed but does not recover
	// the expected key (or does not recover any key).
	ErrSignatureMismatch = errors.New("lnsig: signature does not match public key")
)

// Digest is the hash signmessage signs.
func Digest(message []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(lnPrefix))
	h.Write(message)
	var first [32]byte
	h.Sum(first[:0])
	return sha256.Sum256(first[:])
}

// Sign returns the z-base-32 signmessage signature of message. RFC 6979 makes
// it deterministic.
func Sign(key *btcec.PrivateKey, message []byte) string {
	d := Digest(message)
	return zbase32.Encode(ecdsa.SignCompact(key, d[:], true))
}

// Recover returns the public key that made signature over message. Any
// decodable signature recovers some key for most messages, so callers must
// compare it with the key they expect (Verify does).
func Recover(message []byte, signature string) (*btcec.PublicKey, error) {
	sig, err := zbase32.Decode(signature)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedSignature, err)
	}
	if len(sig) != compactSigLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrMalformedSignature, len(sig), compactSigLen)
	}
	if sig[0] < minHeader || sig[0] > maxHeader {
		// 27..30 would claim an uncompressed key, which the protocol's
		// 33-byte Public-Key can never be.
		return nil, fmt.Errorf("%w: header byte %d", ErrMalformedSignature, sig[0])
	}
	// Every signer of this protocol (LND, LDK) emits low-S signatures. A
	// high-S twin recovers the same key, so refusing it keeps exactly one
	// valid signature per key and message.
	var s btcec.ModNScalar
	if overflow := s.SetByteSlice(sig[33:65]); overflow || s.IsOverHalfOrder() {
		return nil, fmt.Errorf("%w: S is not in the lower half of the group order", ErrMalformedSignature)
	}
	d := Digest(message)
	pub, _, err := ecdsa.RecoverCompact(sig, d[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignatureMismatch, err)
	}
	return pub, nil
}

// Verify returns nil when signature over message recovers pub, else an error
// wrapping ErrMalformedSignature or ErrSignatureMismatch.
func Verify(pub *btcec.PublicKey, message []byte, signature string) error {
	if pub == nil {
		return ErrSignatureMismatch
	}
	var want [btcec.PubKeyBytesLenCompressed]byte
	copy(want[:], pub.SerializeCompressed())
	return verifyCompressed(want, message, signature)
}

func verifyCompressed(want [btcec.PubKeyBytesLenCompressed]byte, message []byte, signature string) error {
	got, err := Recover(message, signature)
	if err != nil {
		return err
	}
	var gotKey [btcec.PubKeyBytesLenCompressed]byte
	copy(gotKey[:], got.SerializeCompressed())
	if gotKey != want {
		return ErrSignatureMismatch
	}
	return nil
}

// backupMessage builds BackupPrefix+payload in one allocation.
func backupMessage(payload string) []byte {
	m := make([]byte, 0, len(BackupPrefix)+len(payload))
	m = append(m, BackupPrefix...)
	return append(m, payload...)
}

// SignBackup signs a backup-protocol payload (a body hash, timestamp,
// challenge, ...).
func SignBackup(key *btcec.PrivateKey, payload string) string {
	return Sign(key, backupMessage(payload))
}

// VerifyBackup verifies a signature made by SignBackup.
func VerifyBackup(pub *btcec.PublicKey, payload, signature string) error {
	return Verify(pub, backupMessage(payload), signature)
}

// VerifyBackupHex is VerifyBackup for a compressed key given as 66 hex
// characters (the Public-Key header), compared case-insensitively. A key that
// is not 66 hex characters cannot match any signature, so it is a mismatch.
func VerifyBackupHex(pubHex, payload, signature string) error {
	var want [btcec.PubKeyBytesLenCompressed]byte
	if len(pubHex) != 2*len(want) {
		return fmt.Errorf("%w: public key is %d characters, want %d", ErrSignatureMismatch, len(pubHex), 2*len(want))
	}
	// hex.Decode accepts both cases, which is the case-insensitive compare.
	if _, err := hex.Decode(want[:], []byte(pubHex)); err != nil {
		return fmt.Errorf("%w: public key is not hex", ErrSignatureMismatch)
	}
	return verifyCompressed(want, backupMessage(payload), signature)
}

// PublicKeyHex is the lowercase hex of key's compressed public key, the form
// the Public-Key header and the server's configuration use.
func PublicKeyHex(key *btcec.PrivateKey) string {
	return hex.EncodeToString(key.PubKey().SerializeCompressed())
}
