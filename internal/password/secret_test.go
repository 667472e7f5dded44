package password

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func TestGenerateSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 43 {
			t.Fatalf("len(%q) = %d, want 43", s, len(s))
		}
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) != 32 {
			t.Fatalf("%q is not 32 bytes of unpadded base64url: %v", s, err)
		}
		if seen[s] {
			t.Fatalf("GenerateSecret repeated %q", s)
		}
		seen[s] = true
	}
}

func TestSecretHasher(t *testing.T) {
	key := DeriveKey([]byte("master key for tests, 32 bytes!!"), "client-secret-hash")
	s := NewSecretHasher(key)
	secret, _ := GenerateSecret()
	h := s.Hash(secret)
	if len(h) != 32 {
		t.Fatalf("len(Hash) = %d, want 32", len(h))
	}
	if !s.Equal(h, secret) {
		t.Fatal("Equal rejected the right secret")
	}
	if s.Equal(h, secret+"x") || s.Equal(h, "") || s.Equal(h[:31], secret) {
		t.Fatal("Equal accepted a wrong secret or a truncated hash")
	}
	if s.Equal(nil, secret) || s.Equal([]byte{}, "") {
		t.Fatal("an empty hash matched")
	}
	// Without the key the hash is worthless: another key gives another hash.
	other := NewSecretHasher(DeriveKey([]byte("another master key"), "client-secret-hash"))
	if other.Equal(h, secret) {
		t.Fatal("a different key verified the secret")
	}
	// The hasher keeps its own copy of the key.
	key[0] ^= 0xff
	if !s.Equal(h, secret) {
		t.Fatal("changing the caller's key slice changed the hasher")
	}
}

func TestDeriveKey(t *testing.T) {
	// RFC 5869 test case 3 (SHA-256, no salt, no info): the first 32
	// bytes of its OKM.
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	want, _ := hex.DecodeString("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d")
	if got := DeriveKey(ikm, ""); !bytes.Equal(got, want) {
		t.Fatalf("DeriveKey(RFC 5869 case 3) = %x, want %x", got, want)
	}
	master := []byte("a master key of some length")
	for _, purpose := range []string{"client-secret-hash", "key-seal", ""} {
		want, err := hkdf.Key(sha256.New, master, nil, purpose, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got := DeriveKey(master, purpose); !bytes.Equal(got, want) {
			t.Errorf("DeriveKey(%q) = %x, crypto/hkdf gives %x", purpose, got, want)
		}
	}
	if bytes.Equal(DeriveKey(master, "client-secret-hash"), DeriveKey(master, "key-seal")) {
		t.Fatal("two purposes share a key")
	}
}

func BenchmarkSecretHash(b *testing.B) {
	s := NewSecretHasher(DeriveKey([]byte("bench master key"), "client-secret-hash"))
	secret, _ := GenerateSecret()
	h := s.Hash(secret)
	for b.Loop() {
		if !s.Equal(h, secret) {
			b.Fatal("mismatch")
		}
	}
}
