package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"math/big"
)

// ErrBadJWK: a JWK or JWK Set is malformed or names a key gatehouse cannot
// use.
var ErrBadJWK = errors.New("jwt: invalid JWK")

// JWK is a public JSON Web Key (RFC 7517) of kty RSA, EC (P-256) or OKP
// (Ed25519, RFC 8037). Private members are never read or written.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	// N and E: RSA modulus and exponent (RFC 7518 §6.3.1).
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`
	// Crv, X and Y: EC (RFC 7518 §6.2.1) or OKP (RFC 8037 §2) point.
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	// X5c is the certificate chain, kept only because some clients
	// (Keycloak adapters) expect it in a JWKS; gatehouse never trusts it.
	X5c []string `json:"x5c,omitempty"`
}

// JWKS is a JWK Set document (RFC 7517 §5).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWK describes pub as a JWK with use "sig", the given kid and alg.
// pub is an *rsa.PublicKey, an *ecdsa.PublicKey on P-256 or an
// ed25519.PublicKey.
func PublicJWK(kid, alg string, pub crypto.PublicKey) (JWK, error) {
	j := JWK{Kid: kid, Use: "sig", Alg: alg}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil || k.E <= 0 {
			return JWK{}, ErrBadJWK
		}
		j.Kty = "RSA"
		j.N = b64.EncodeToString(k.N.Bytes())
		j.E = b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return JWK{}, ErrBadJWK
		}
		pt, err := k.Bytes() // 0x04 || X || Y, each 32 bytes
		if err != nil || len(pt) != 65 {
			return JWK{}, ErrBadJWK
		}
		j.Kty, j.Crv = "EC", "P-256"
		j.X = b64.EncodeToString(pt[1:33])
		j.Y = b64.EncodeToString(pt[33:])
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return JWK{}, ErrBadJWK
		}
		j.Kty, j.Crv = "OKP", "Ed25519"
		j.X = b64.EncodeToString(k)
	default:
		return JWK{}, ErrBadJWK
	}
	return j, nil
}

// PublicKey returns the key j describes: *rsa.PublicKey (at least 2048
// bits), *ecdsa.PublicKey (P-256, checked to be on the curve) or
// ed25519.PublicKey.
func (j JWK) PublicKey() (crypto.PublicKey, error) {
	switch j.Kty {
	case "RSA":
		n, err := b64.DecodeString(j.N)
		if err != nil || len(n) == 0 || n[0] == 0 {
			return nil, ErrBadJWK
		}
		e, err := b64.DecodeString(j.E)
		// Exponents above 2^31-1 are not used in practice and crypto/rsa
		// refuses them; even or tiny exponents are not RSA keys.
		if err != nil || len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return nil, ErrBadJWK
		}
		ev := new(big.Int).SetBytes(e)
		if ev.BitLen() > 31 || ev.Int64() < 3 || ev.Bit(0) == 0 {
			return nil, ErrBadJWK
		}
		k := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev.Int64())}
		if k.N.BitLen() < MinRSABits {
			return nil, ErrWeakKey
		}
		return k, nil
	case "EC":
		if j.Crv != "P-256" {
			return nil, ErrBadJWK
		}
		x, err1 := b64.DecodeString(j.X)
		y, err2 := b64.DecodeString(j.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return nil, ErrBadJWK
		}
		pt := make([]byte, 0, 65)
		pt = append(pt, 4)
		pt = append(pt, x...)
		pt = append(pt, y...)
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
		if err != nil {
			return nil, ErrBadJWK
		}
		return k, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, ErrBadJWK
		}
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, ErrBadJWK
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, ErrBadJWK
}

// ParseJWKS parses a JWK Set. Keys of a kty or curve gatehouse does not know
// (oct, P-384, X25519, a future type) are skipped so that one exotic key does not make a
// client's whole set unusable; a key of a known kty that does not parse is an
// error, as is a document without a "keys" array.
func ParseJWKS(data []byte) (JWKS, error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Keys == nil {
		return JWKS{}, ErrBadJWK
	}
	out := JWKS{Keys: make([]JWK, 0, len(*doc.Keys))}
	for _, raw := range *doc.Keys {
		var j JWK
		if err := json.Unmarshal(raw, &j); err != nil {
			return JWKS{}, ErrBadJWK
		}
		if !known(j) {
			continue
		}
		if _, err := j.PublicKey(); err != nil {
			return JWKS{}, err
		}
		out.Keys = append(out.Keys, j)
	}
	return out, nil
}

// known reports whether j is of a kty and curve PublicKey understands.
func known(j JWK) bool {
	switch j.Kty {
	case "RSA":
		return true
	case "EC":
		return j.Crv == "P-256"
	case "OKP":
		return j.Crv == "Ed25519"
	}
	return false
}
