//go:build openssl && cgo

package jwt

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// opensslTestKeys returns fresh keys of the sizes gatehouse signs with:
// two of 2048 bits (the default) and one of 3072.
func opensslTestKeys(t testing.TB) []*rsa.PrivateKey {
	t.Helper()
	var keys []*rsa.PrivateKey
	for _, bits := range []int{2048, 2048, 3072} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// randomMessages returns n messages of random content and length 0..2047,
// always including the empty one.
func randomMessages(n int) [][]byte {
	msgs := [][]byte{{}, nil}
	for len(msgs) < n {
		m := make([]byte, mrand.IntN(2048))
		rand.Read(m)
		msgs = append(msgs, m)
	}
	return msgs
}

func mustOpenSSLSigner(t testing.TB, alg string, k *rsa.PrivateKey) *opensslRSASigner {
	t.Helper()
	s, err := NewSigner(alg, "kid-1", k)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := s.(*opensslRSASigner)
	if !ok {
		t.Fatalf("NewSigner(%s) built with -tags openssl gave %T, want the OpenSSL signer", alg, s)
	}
	if o.Alg() != alg || o.KID() != "kid-1" {
		t.Fatalf("Alg, KID = %q, %q", o.Alg(), o.KID())
	}
	return o
}

func TestRSABackendIsOpenSSL(t *testing.T) {
	if b := RSABackend(); !strings.HasPrefix(b, "OpenSSL 3") || !strings.HasSuffix(b, "(cgo)") {
		t.Errorf("RSABackend() = %q", b)
	}
}

// PKCS#1 v1.5 is deterministic, so OpenSSL must produce exactly the bytes
// crypto/rsa does, for every key and message.
func TestOpenSSLRS256MatchesCryptoRSA(t *testing.T) {
	msgs := randomMessages(60)
	for i, k := range opensslTestKeys(t) {
		s := mustOpenSSLSigner(t, RS256, k)
		for j, m := range msgs {
			got, err := s.Sign(m)
			if err != nil {
				t.Fatal(err)
			}
			d := sha256.Sum256(m)
			want, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("key %d (%d bits), message %d (%d bytes): OpenSSL and crypto/rsa disagree", i, k.N.BitLen(), j, len(m))
			}
			if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, d[:], got); err != nil {
				t.Fatal(err)
			}
			if err := Verify(RS256, &k.PublicKey, m, got); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// PS256 is randomized, so the test is that crypto/rsa verifies it with the
// salt length RFC 7518 §3.5 fixes (32 bytes for SHA-256), and that two
// signatures of one message differ (the salt is fresh each time).
func TestOpenSSLPS256VerifiesWithCryptoRSA(t *testing.T) {
	msgs := randomMessages(60)
	exact := &rsa.PSSOptions{SaltLength: sha256.Size, Hash: crypto.SHA256}
	for i, k := range opensslTestKeys(t) {
		s := mustOpenSSLSigner(t, PS256, k)
		for j, m := range msgs {
			sig, err := s.Sign(m)
			if err != nil {
				t.Fatal(err)
			}
			if len(sig) != k.Size() {
				t.Fatalf("signature of %d bytes for a %d-byte modulus", len(sig), k.Size())
			}
			d := sha256.Sum256(m)
			if err := rsa.VerifyPSS(&k.PublicKey, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
				t.Fatalf("key %d, message %d: %v", i, j, err)
			}
			if err := rsa.VerifyPSS(&k.PublicKey, crypto.SHA256, d[:], sig, exact); err != nil {
				t.Fatalf("key %d, message %d: salt is not 32 bytes: %v", i, j, err)
			}
			if err := Verify(PS256, &k.PublicKey, m, sig); err != nil {
				t.Fatal(err)
			}
			// A PS256 signature is not a valid RS256 one, and a changed
			// message does not verify.
			if Verify(RS256, &k.PublicKey, m, sig) == nil {
				t.Fatal("PS256 signature verifies as RS256")
			}
			if Verify(PS256, &k.PublicKey, append(bytes.Clone(m), 'x'), sig) == nil {
				t.Fatal("signature verifies for another message")
			}
		}
		a, _ := s.Sign(msgs[2])
		b, _ := s.Sign(msgs[2])
		if bytes.Equal(a, b) {
			t.Error("two PS256 signatures of one message are equal: the salt is not random")
		}
	}
}

// A whole token signed through Sign verifies through Parse and Verify, so the
// cached header path works with the OpenSSL signer.
func TestOpenSSLSignerThroughSign(t *testing.T) {
	k := opensslTestKeys(t)[0]
	for _, alg := range []string{RS256, PS256} {
		s := mustOpenSSLSigner(t, alg, k)
		tok, err := Sign(s, "JWT", []byte(`{"sub":"u1"}`))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(tok)
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Alg != alg || p.Header.Kid != "kid-1" {
			t.Fatalf("header %+v", p.Header)
		}
		if err := Verify(alg, &k.PublicKey, p.SigningInput, p.Signature); err != nil {
			t.Fatal(err)
		}
	}
}

// Concurrent Sign calls share one EVP_PKEY; run with -race.
func TestOpenSSLConcurrentSign(t *testing.T) {
	k := opensslTestKeys(t)[0]
	for _, alg := range []string{RS256, PS256} {
		s := mustOpenSSLSigner(t, alg, k)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := range 20 {
					m := fmt.Appendf(nil, "goroutine %d message %d", g, i)
					sig, err := s.Sign(m)
					if err == nil {
						err = Verify(alg, &k.PublicKey, m, sig)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
}

// Keys come from the store, but a corrupt or foreign DER must still give an
// error, not a crash.
func TestLoadRSAKeyRefusesOtherInput(t *testing.T) {
	k := opensslTestKeys(t)[0]
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if loadRSAKey(der) == nil {
		t.Fatal("a valid PKCS#8 RSA key was refused")
	}
	for _, kp := range genKeys(t) {
		if kp.alg == RS256 || kp.alg == PS256 || kp.alg == HS256 {
			continue
		}
		other, err := x509.MarshalPKCS8PrivateKey(kp.priv)
		if err != nil {
			t.Fatal(err)
		}
		if loadRSAKey(other) != nil {
			t.Errorf("%s key loaded as RSA", kp.alg)
		}
	}
	for _, bad := range [][]byte{nil, {0x30}, der[:len(der)/2], append(bytes.Clone(der), 0), bytes.Repeat([]byte{0xff}, 100)} {
		if loadRSAKey(bad) != nil {
			t.Errorf("%d bytes of garbage loaded as a key", len(bad))
		}
	}
}

// Dropped signers are freed by their cleanup; building and dropping many
// must neither crash nor leave earlier signers unusable.
func TestOpenSSLSignersAreCollected(t *testing.T) {
	k := opensslTestKeys(t)[0]
	keep := mustOpenSSLSigner(t, RS256, k)
	for range 50 {
		mustOpenSSLSigner(t, RS256, k)
	}
	runtime.GC()
	runtime.GC()
	sig, err := keep.Sign([]byte("still here"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(RS256, &k.PublicKey, []byte("still here"), sig); err != nil {
		t.Fatal(err)
	}
}

func benchRawSigner(b *testing.B, s Signer) {
	in := []byte(strings.Repeat("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0", 12))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenSSLSignRS256(b *testing.B) {
	k := opensslTestKeys(b)[0]
	benchRawSigner(b, mustOpenSSLSigner(b, RS256, k))
}

func BenchmarkGoSignRS256(b *testing.B) {
	k := opensslTestKeys(b)[0]
	benchRawSigner(b, newGoRSASigner(RS256, "kid-1", k))
}

func BenchmarkOpenSSLSignPS256(b *testing.B) {
	k := opensslTestKeys(b)[0]
	benchRawSigner(b, mustOpenSSLSigner(b, PS256, k))
}

func BenchmarkGoSignPS256(b *testing.B) {
	k := opensslTestKeys(b)[0]
	benchRawSigner(b, newGoRSASigner(PS256, "kid-1", k))
}

// A key crypto/rsa accepts in NewSigner but that cannot go to OpenSSL (here
// an inconsistent one, refused when marshalled) gets the crypto/rsa signer,
// so the tagged build behaves as the default one for it.
func TestOpenSSLFallsBackToCryptoRSA(t *testing.T) {
	k := opensslTestKeys(t)[0]
	bad := *k
	bad.D = new(big.Int).Add(k.D, big.NewInt(2))
	if _, err := newOpenSSLRSASigner(RS256, "", &bad); err == nil {
		t.Fatal("OpenSSL signer built from an inconsistent key")
	}
	s, err := NewSigner(RS256, "kid-1", &bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*rsaSigner); !ok {
		t.Fatalf("NewSigner gave %T, want the crypto/rsa signer", s)
	}
}
