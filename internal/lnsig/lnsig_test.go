package lnsig

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"

	"ldkbackup/internal/zbase32"
)

// The shared copy is the source of truth; the committed copy lets the package
// test on its own (a checkout without the shared folder beside it).
const (
	sharedVectorsPath    = "../../../shared/testdata/signmessage-vectors.json"
	committedVectorsPath = "testdata/signmessage-vectors.json"
)

type positiveVector struct {
	PrivKey      string `json:"privkey"`
	PubKey       string `json:"pubkey"`
	Message      string `json:"message"`
	Signature    string `json:"signature_zbase32"`
	Kind         string `json:"kind"`
	Suffix       string `json:"suffix"`
	DigestHex    string `json:"digest_hex"`
	SignatureHex string `json:"signature_hex"`
}

type negativeVector struct {
	PrivKey    string `json:"privkey"`
	PubKey     string `json:"pubkey"`
	Message    string `json:"message"`
	Signature  string `json:"signature_zbase32"`
	Reason     string `json:"reason"`
	RecoversTo string `json:"recovers_to"`
}

type vectorFile struct {
	LNPrefix       string           `json:"ln_prefix"`
	ProtocolPrefix string           `json:"protocol_prefix"`
	Positive       []positiveVector `json:"positive"`
	Negative       []negativeVector `json:"negative"`
}

func readVectors(t testing.TB, path string) vectorFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var v vectorFile
	require.NoError(t, json.Unmarshal(raw, &v), "parse %s", path)
	return v
}

// loadVectors never skips: a missing vectors file must fail the build.
func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	path := committedVectorsPath
	if _, err := os.Stat(sharedVectorsPath); err == nil {
		path = sharedVectorsPath
	}
	v := readVectors(t, path)
	require.NotEmpty(t, v.Positive, "no positive vectors in %s", path)
	require.NotEmpty(t, v.Negative, "no negative vectors in %s", path)
	return v
}

func privKey(t testing.TB, h string) *btcec.PrivateKey {
	t.Helper()
	b, err := hex.DecodeString(h)
	require.NoError(t, err)
	require.Len(t, b, 32)
	k, _ := btcec.PrivKeyFromBytes(b)
	return k
}

func pubKey(t testing.TB, h string) *btcec.PublicKey {
	t.Helper()
	b, err := hex.DecodeString(h)
	require.NoError(t, err)
	p, err := btcec.ParsePubKey(b)
	require.NoError(t, err)
	return p
}

func TestCommittedVectorsMatchShared(t *testing.T) {
	t.Parallel()
	committed, err := os.ReadFile(committedVectorsPath)
	require.NoError(t, err, "the committed copy of the vectors is missing")
	shared, err := os.ReadFile(sharedVectorsPath)
	if errors.Is(err, os.ErrNotExist) {
		return // nothing to compare against; loadVectors uses the committed copy
	}
	require.NoError(t, err)
	require.True(t, bytes.Equal(shared, committed),
		"%s is stale: copy %s over it", committedVectorsPath, sharedVectorsPath)
}

func TestPrefixesMatchVectors(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	require.Equal(t, lnPrefix, v.LNPrefix)
	require.Equal(t, BackupPrefix, v.ProtocolPrefix)
}

func TestPositiveVectors(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	require.Greater(t, len(v.Positive), 0)
	ran := 0
	for i, tc := range v.Positive {
		ran++
		t.Run(fmt.Sprintf("%02d_%s", i, tc.Kind), func(t *testing.T) {
			t.Parallel()
			key := privKey(t, tc.PrivKey)
			pub := pubKey(t, tc.PubKey)
			msg := []byte(tc.Message)

			require.Equal(t, tc.PubKey, PublicKeyHex(key))
			require.Equal(t, BackupPrefix+tc.Suffix, tc.Message)

			d := Digest(msg)
			require.Equal(t, tc.DigestHex, hex.EncodeToString(d[:]))

			raw, err := zbase32.Decode(tc.Signature)
			require.NoError(t, err)
			require.Equal(t, tc.SignatureHex, hex.EncodeToString(raw))

			// RFC 6979 is deterministic: we must produce the very same bytes.
			require.Equal(t, tc.Signature, Sign(key, msg))
			require.Equal(t, tc.Signature, SignBackup(key, tc.Suffix))

			require.NoError(t, Verify(pub, msg, tc.Signature))
			require.NoError(t, VerifyBackup(pub, tc.Suffix, tc.Signature))
			require.NoError(t, VerifyBackupHex(tc.PubKey, tc.Suffix, tc.Signature))
			require.NoError(t, VerifyBackupHex(strings.ToUpper(tc.PubKey), tc.Suffix, tc.Signature))

			got, err := Recover(msg, tc.Signature)
			require.NoError(t, err)
			require.True(t, got.IsEqual(pub))

			// The same signature must not verify for a different payload.
			err = VerifyBackup(pub, tc.Suffix+"0", tc.Signature)
			require.ErrorIs(t, err, ErrSignatureMismatch)
		})
	}
	require.Equal(t, len(v.Positive), ran)
}

func TestNegativeVectors(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	require.Greater(t, len(v.Negative), 0)
	ran := 0
	for i, tc := range v.Negative {
		ran++
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			t.Parallel()
			t.Log(tc.Reason)
			pub := pubKey(t, tc.PubKey)
			msg := []byte(tc.Message)
			require.True(t, strings.HasPrefix(tc.Message, BackupPrefix))
			payload := strings.TrimPrefix(tc.Message, BackupPrefix)

			err := Verify(pub, msg, tc.Signature)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrSignatureMismatch) || errors.Is(err, ErrMalformedSignature), "%v", err)
			require.Error(t, VerifyBackup(pub, payload, tc.Signature))
			require.Error(t, VerifyBackupHex(tc.PubKey, payload, tc.Signature))
			require.Error(t, VerifyBackupHex(strings.ToUpper(tc.PubKey), payload, tc.Signature))

			if tc.RecoversTo != "" {
				got, err := Recover(msg, tc.Signature)
				require.NoError(t, err)
				require.Equal(t, tc.RecoversTo, hex.EncodeToString(got.SerializeCompressed()))
				require.ErrorIs(t, Verify(pub, msg, tc.Signature), ErrSignatureMismatch)
				require.NoError(t, VerifyBackupHex(tc.RecoversTo, payload, tc.Signature))
			}
		})
	}
	require.Equal(t, len(v.Negative), ran)
}

func TestMalformedSignatures(t *testing.T) {
	t.Parallel()
	key := privKey(t, "0101010101010101010101010101010101010101010101010101010101010101")
	pub := key.PubKey()
	const payload = "1700000000000"
	good, err := zbase32.Decode(SignBackup(key, payload))
	require.NoError(t, err)
	require.GreaterOrEqual(t, good[0], byte(31))
	require.LessOrEqual(t, good[0], byte(34))

	withHeader := func(h byte) string {
		b := bytes.Clone(good)
		b[0] = h
		return zbase32.Encode(b)
	}

	tests := []struct {
		name string
		sig  string
		want error
	}{
		{"empty", "", ErrMalformedSignature},
		{"not zbase32", "not a signature!", ErrMalformedSignature},
		{"uppercase", strings.ToUpper(zbase32.Encode(good)), ErrMalformedSignature},
		{"hex instead of zbase32", hex.EncodeToString(good), ErrMalformedSignature},
		{"64 bytes", zbase32.Encode(good[:64]), ErrMalformedSignature},
		{"66 bytes", zbase32.Encode(append(bytes.Clone(good), 0)), ErrMalformedSignature},
		// Same r||s and recovery id, but claiming an uncompressed key.
		{"uncompressed header", withHeader(good[0] - 4), ErrMalformedSignature},
		{"header 27", withHeader(27), ErrMalformedSignature},
		{"header 30", withHeader(30), ErrMalformedSignature},
		{"header 35", withHeader(35), ErrMalformedSignature},
		{"header 0", withHeader(0), ErrMalformedSignature},
		{"header 255", withHeader(255), ErrMalformedSignature},
		{"r is zero", zbase32.Encode(append([]byte{31}, make([]byte, 64)...)), ErrSignatureMismatch},
		{"r and s at max", zbase32.Encode(append([]byte{31}, bytes.Repeat([]byte{0xff}, 64)...)), ErrMalformedSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, VerifyBackup(pub, payload, tc.sig), tc.want)
			require.ErrorIs(t, VerifyBackupHex(PublicKeyHex(key), payload, tc.sig), tc.want)
			_, err := Recover(backupMessage(payload), tc.sig)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestVerifyBackupHexRejectsBadKeys(t *testing.T) {
	t.Parallel()
	key := privKey(t, "0202020202020202020202020202020202020202020202020202020202020202")
	sig := SignBackup(key, "x")
	good := PublicKeyHex(key)
	require.NoError(t, VerifyBackupHex(good, "x", sig))
	for _, bad := range []string{"", good[:64], good + "00", "zz" + good[2:], " " + good[1:]} {
		require.ErrorIs(t, VerifyBackupHex(bad, "x", sig), ErrSignatureMismatch, "%q", bad)
	}
	require.ErrorIs(t, Verify(nil, []byte("x"), sig), ErrSignatureMismatch)
}

func TestSignVerifiesOnlyForItsKey(t *testing.T) {
	t.Parallel()
	a := privKey(t, "0101010101010101010101010101010101010101010101010101010101010101")
	b := privKey(t, "0202020202020202020202020202020202020202020202020202020202020202")
	sig := SignBackup(a, "payload")
	require.NoError(t, VerifyBackup(a.PubKey(), "payload", sig))
	require.ErrorIs(t, VerifyBackup(b.PubKey(), "payload", sig), ErrSignatureMismatch)
}

func FuzzVerify(f *testing.F) {
	v := loadVectors(f)
	for _, p := range v.Positive {
		f.Add([]byte(p.Message), p.Signature, []byte(p.PrivKey))
	}
	for _, n := range v.Negative {
		f.Add([]byte(n.Message), n.Signature, []byte(n.PubKey))
	}
	f.Add([]byte{}, "", []byte{})
	f.Add([]byte("x"), "yy", []byte{1})
	f.Fuzz(func(t *testing.T, message []byte, signature string, seed []byte) {
		// The seed picks a key; hashing it keeps any input a usable scalar.
		k := Digest(seed)
		key, pub := btcec.PrivKeyFromBytes(k[:])

		// Arbitrary input must not panic, and failures carry one of our errors.
		if err := Verify(pub, message, signature); err != nil {
			require.True(t, errors.Is(err, ErrSignatureMismatch) || errors.Is(err, ErrMalformedSignature), "%v", err)
		}
		_, _ = Recover(message, signature)
		_ = VerifyBackupHex(string(seed), string(message), signature)

		own := Sign(key, message)
		require.NoError(t, Verify(pub, message, own))
		got, err := Recover(message, own)
		require.NoError(t, err)
		require.True(t, got.IsEqual(pub))
	})
}

func BenchmarkSignBackup(b *testing.B) {
	key := privKey(b, "c90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74020bbea63b139b22")
	payload := strings.Repeat("ab", 32)
	b.ReportAllocs()
	for b.Loop() {
		_ = SignBackup(key, payload)
	}
}

func BenchmarkVerifyBackup(b *testing.B) {
	key := privKey(b, "c90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74020bbea63b139b22")
	payload := strings.Repeat("ab", 32)
	sig := SignBackup(key, payload)
	pub := key.PubKey()
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyBackup(pub, payload, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHighSIsRefused: (r, n-s) with the other recovery id recovers the same
// key; it must still not verify.
func TestHighSIsRefused(t *testing.T) {
	t.Parallel()
	key, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{1}, 32))
	msg := []byte(BackupPrefix + "high-s")
	sig, err := zbase32.Decode(Sign(key, msg))
	if err != nil {
		t.Fatal(err)
	}
	var s btcec.ModNScalar
	s.SetByteSlice(sig[33:65])
	s.Negate()
	high := append([]byte{}, sig...)
	sBytes := s.Bytes()
	copy(high[33:65], sBytes[:])
	high[0] ^= 1 // the other recovery id
	if err := Verify(key.PubKey(), msg, zbase32.Encode(high)); !errors.Is(err, ErrMalformedSignature) {
		t.Fatalf("high-S signature: got %v, want ErrMalformedSignature", err)
	}
	if err := Verify(key.PubKey(), msg, zbase32.Encode(sig)); err != nil {
		t.Fatalf("the low-S original must verify: %v", err)
	}
}
