package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"sync"
)

// MinRSABits is the smallest RSA modulus gatehouse signs or verifies with
// (RFC 7518 §3.3 requires 2048).
const MinRSABits = 2048

// MinHMACKeyLen is the smallest HS256 key accepted: RFC 7518 §3.2 requires a
// key at least as long as the hash output.
const MinHMACKeyLen = 32

// Signer signs a JWS signing input with one key under one algorithm.
// Implementations other than NewSigner's (a key held in an HSM) plug in
// behind this interface; NewSigner's own RSA signer is OpenSSL's when built
// with -tags openssl (see RSABackend).
type Signer interface {
	// Alg is the JWS "alg" the signatures are made with.
	Alg() string
	// KID is the key id put in the header ("" for none).
	KID() string
	// Sign returns the JWS signature (RFC 7518 §3) of signingInput.
	Sign(signingInput []byte) ([]byte, error)
}

// headerCacher is implemented by the signers of this package so that Sign
// reuses the encoded header instead of marshalling it for every token.
type headerCacher interface {
	encodedHeader(typ string) string
}

// maxCachedHeaders bounds the per-signer header cache; callers use a handful
// of typ values, so the bound only matters if typ ever comes from input.
const maxCachedHeaders = 16

type headerCache struct {
	alg, kid string
	mu       sync.RWMutex
	byTyp    map[string]string
}

func (c *headerCache) Alg() string { return c.alg }
func (c *headerCache) KID() string { return c.kid }

func (c *headerCache) encodedHeader(typ string) string {
	c.mu.RLock()
	h, ok := c.byTyp[typ]
	c.mu.RUnlock()
	if ok {
		return h
	}
	h = encodeHeader(c.alg, c.kid, typ)
	c.mu.Lock()
	if c.byTyp == nil {
		c.byTyp = make(map[string]string)
	}
	if len(c.byTyp) < maxCachedHeaders {
		c.byTyp[typ] = h
	}
	c.mu.Unlock()
	return h
}

// NewSigner returns a Signer for alg with the private key: *rsa.PrivateKey
// (at least 2048 bits) for RS256 and PS256, *ecdsa.PrivateKey on P-256 for
// ES256, ed25519.PrivateKey for EdDSA, []byte of at least 32 bytes for HS256.
// Any other combination is an error.
func NewSigner(alg, kid string, key any) (Signer, error) {
	switch alg {
	case RS256, PS256:
		k, ok := key.(*rsa.PrivateKey)
		if !ok || k == nil {
			return nil, ErrKeyType
		}
		if k.N == nil || k.N.BitLen() < MinRSABits {
			return nil, ErrWeakKey
		}
		return newRSASigner(alg, kid, k), nil
	case ES256:
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k == nil || k.Curve != elliptic.P256() {
			return nil, ErrKeyType
		}
		return &ecSigner{headerCache: headerCache{alg: alg, kid: kid}, key: k}, nil
	case EdDSA:
		k, ok := key.(ed25519.PrivateKey)
		if !ok || len(k) != ed25519.PrivateKeySize {
			return nil, ErrKeyType
		}
		return &edSigner{headerCache: headerCache{alg: alg, kid: kid}, key: k}, nil
	case HS256:
		k, ok := key.([]byte)
		if !ok {
			return nil, ErrKeyType
		}
		if len(k) < MinHMACKeyLen {
			return nil, ErrWeakKey
		}
		// Copy so that a caller reusing its slice cannot change the key.
		return &hmacSigner{headerCache: headerCache{alg: alg, kid: kid}, key: append([]byte(nil), k...)}, nil
	}
	return nil, ErrUnsupportedAlg
}

// pssOptions: RFC 7518 §3.5 fixes the salt length to the hash size, for
// signing and for verifying.
func pssOptions() *rsa.PSSOptions {
	return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
}

// newGoRSASigner is the crypto/rsa signer: what NewSigner returns for RS256
// and PS256 in the default build, and the fallback of the OpenSSL build.
func newGoRSASigner(alg, kid string, k *rsa.PrivateKey) *rsaSigner {
	return &rsaSigner{headerCache: headerCache{alg: alg, kid: kid}, key: k, pss: alg == PS256}
}

type rsaSigner struct {
	headerCache
	key *rsa.PrivateKey
	pss bool
}

func (s *rsaSigner) Sign(in []byte) ([]byte, error) {
	d := sha256.Sum256(in)
	if s.pss {
		return rsa.SignPSS(rand.Reader, s.key, crypto.SHA256, d[:], pssOptions())
	}
	return rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, d[:])
}

type ecSigner struct {
	headerCache
	key *ecdsa.PrivateKey
}

// Sign returns r||s, each left-padded to 32 bytes (RFC 7518 §3.4), not the
// ASN.1 form crypto/ecdsa produces by default.
func (s *ecSigner) Sign(in []byte) ([]byte, error) {
	d := sha256.Sum256(in)
	der, err := ecdsa.SignASN1(rand.Reader, s.key, d[:])
	if err != nil {
		return nil, err
	}
	return derToRaw(der)
}

var errECDSAEncoding = errors.New("jwt: unexpected ECDSA signature encoding")

// derToRaw converts an ASN.1 ECDSA-Sig-Value for P-256 into r||s. Going
// through the DER form rather than ecdsa.Sign's big.Ints saves most of the
// allocations of an ES256 signature.
func derToRaw(der []byte) ([]byte, error) {
	// SEQUENCE, short-form length (a P-256 signature is at most 72 bytes).
	if len(der) < 8 || der[0] != 0x30 || int(der[1]) != len(der)-2 {
		return nil, errECDSAEncoding
	}
	out := make([]byte, 64)
	rest := der[2:]
	for i := range 2 {
		if len(rest) < 3 || rest[0] != 0x02 || int(rest[1]) > len(rest)-2 {
			return nil, errECDSAEncoding
		}
		n := rest[2 : 2+int(rest[1])]
		rest = rest[2+int(rest[1]):]
		for len(n) > 0 && n[0] == 0 {
			n = n[1:]
		}
		if len(n) > 32 {
			return nil, errECDSAEncoding
		}
		copy(out[32*(i+1)-len(n):32*(i+1)], n)
	}
	if len(rest) != 0 {
		return nil, errECDSAEncoding
	}
	return out, nil
}

// rawToDER converts r||s (64 bytes) into an ASN.1 ECDSA-Sig-Value.
func rawToDER(sig []byte) []byte {
	der := make([]byte, 2, 72)
	der[0] = 0x30
	for _, n := range [][]byte{sig[:32], sig[32:]} {
		for len(n) > 1 && n[0] == 0 {
			n = n[1:]
		}
		pad := n[0]&0x80 != 0
		l := len(n)
		if pad {
			l++
		}
		der = append(der, 0x02, byte(l))
		if pad {
			der = append(der, 0)
		}
		der = append(der, n...)
	}
	der[1] = byte(len(der) - 2)
	return der
}

type edSigner struct {
	headerCache
	key ed25519.PrivateKey
}

func (s *edSigner) Sign(in []byte) ([]byte, error) {
	return ed25519.Sign(s.key, in), nil
}

type hmacSigner struct {
	headerCache
	key []byte
}

func (s *hmacSigner) Sign(in []byte) ([]byte, error) {
	return hmacSHA256(s.key, in), nil
}

func hmacSHA256(key, in []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(in)
	return m.Sum(make([]byte, 0, sha256.Size))
}

// Verify checks sig over signingInput under alg with key. The key's type
// must fit alg: *rsa.PublicKey (at least 2048 bits) for RS256 and PS256,
// *ecdsa.PublicKey on P-256 for ES256, ed25519.PublicKey for EdDSA and
// []byte (at least 32 bytes) for HS256. So a token that names HS256 can never
// be checked against RSA or EC key material, whatever bytes the caller holds.
func Verify(alg string, key any, signingInput, sig []byte) error {
	switch alg {
	case RS256, PS256:
		k, ok := key.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return ErrKeyType
		}
		if k.N.BitLen() < MinRSABits {
			return ErrWeakKey
		}
		d := sha256.Sum256(signingInput)
		var err error
		if alg == PS256 {
			err = rsa.VerifyPSS(k, crypto.SHA256, d[:], sig, pssOptions())
		} else {
			err = rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig)
		}
		if err != nil {
			return ErrSignature
		}
		return nil
	case ES256:
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve != elliptic.P256() {
			return ErrKeyType
		}
		if len(sig) != 64 {
			return ErrSignature
		}
		d := sha256.Sum256(signingInput)
		if !ecdsa.VerifyASN1(k, d[:], rawToDER(sig)) {
			return ErrSignature
		}
		return nil
	case EdDSA:
		k, ok := key.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return ErrKeyType
		}
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, signingInput, sig) {
			return ErrSignature
		}
		return nil
	case HS256:
		k, ok := key.([]byte)
		if !ok {
			return ErrKeyType
		}
		if len(k) < MinHMACKeyLen {
			return ErrWeakKey
		}
		if !hmac.Equal(hmacSHA256(k, signingInput), sig) {
			return ErrSignature
		}
		return nil
	}
	return ErrUnsupportedAlg
}
