package password

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// SecretHasher stores generated client secrets as HMAC-SHA256 under a key
// kept outside the database. The secrets are 256-bit random, so a slow hash
// buys nothing (and would cap client-credentials throughput), and without
// the key a stolen database authenticates nobody. It is safe for
// concurrent use.
type SecretHasher struct {
	key []byte
}

// NewSecretHasher returns a SecretHasher keyed with key (a copy is kept).
// The key should be DeriveKey(master, "client-secret-hash") or another
// 32-byte secret that does not live in the database.
func NewSecretHasher(key []byte) *SecretHasher {
	return &SecretHasher{key: append([]byte(nil), key...)}
}

// Hash returns the 32-byte keyed hash of secret, the value to store.
func (s *SecretHasher) Hash(secret string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// Equal reports whether hash is the keyed hash of secret, in constant time.
// An empty hash (a client without a secret) matches nothing.
func (s *SecretHasher) Equal(hash []byte, secret string) bool {
	if len(hash) == 0 {
		return false
	}
	return hmac.Equal(hash, s.Hash(secret))
}

// GenerateSecret returns a new 256-bit random secret in unpadded base64url
// (43 characters), safe in URLs, form bodies and Basic credentials.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// DeriveKey derives a 32-byte key for one purpose from the master key
// (HKDF-SHA256, RFC 5869, with no salt and info = purpose), so that the key
// hashing client secrets and the key sealing private keys are distinct and
// a leak of one does not expose the other.
func DeriveKey(master []byte, purpose string) []byte {
	// One HKDF-Expand block is exactly 32 bytes, so HKDF reduces to two
	// HMACs. Written out, it has no error path (crypto/hkdf.Key returns
	// one), so a caller can never end up with a nil, predictable key.
	extract := hmac.New(sha256.New, make([]byte, sha256.Size))
	extract.Write(master)
	prk := extract.Sum(nil)
	expand := hmac.New(sha256.New, prk)
	expand.Write([]byte(purpose))
	expand.Write([]byte{1})
	return expand.Sum(nil)
}
