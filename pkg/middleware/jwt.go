package middleware

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// maxTokenSize bounds the work an attacker can make one request cost.
const maxTokenSize = 16 << 10

var b64 = base64.RawURLEncoding.Strict()

type jwtHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

// parsedJWT is a compact JWS split into its parts; nothing in it is
// trusted until verify succeeds.
type parsedJWT struct {
	header  jwtHeader
	payload []byte
	signed  string // header.payload, the signing input
	sig     []byte
}

var errMalformed = errors.New("malformed token")

func parseJWT(tok string) (*parsedJWT, error) {
	if len(tok) > maxTokenSize {
		return nil, errors.New("token too large")
	}
	h, rest, ok1 := strings.Cut(tok, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s, ".") {
		return nil, errMalformed
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, errMalformed
	}
	pt := &parsedJWT{signed: tok[:len(h)+1+len(p)]}
	if err := json.Unmarshal(hb, &pt.header); err != nil {
		return nil, errMalformed
	}
	if len(pt.header.Crit) > 0 {
		// RFC 7515 §4.1.11: extensions we do not understand must fail.
		return nil, errors.New("unsupported critical header")
	}
	if pt.payload, err = b64.DecodeString(p); err != nil {
		return nil, errMalformed
	}
	if pt.sig, err = b64.DecodeString(s); err != nil {
		return nil, errMalformed
	}
	return pt, nil
}

// algKty is the only key type each accepted algorithm may use: a token can
// never choose how its key is interpreted ("none" and HS* are absent, so a
// public key can never become an HMAC secret).
var algKty = map[string]string{
	"RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
	"PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
	"ES256": "EC", "ES384": "EC", "ES512": "EC",
	"EdDSA": "OKP", "Ed25519": "OKP",
}

var algCurve = map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}

func algHash(alg string) crypto.Hash {
	switch alg[2:] {
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return crypto.SHA256
}

func digest(h crypto.Hash, msg string) []byte {
	switch h {
	case crypto.SHA384:
		d := sha512.Sum384([]byte(msg))
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512([]byte(msg))
		return d[:]
	}
	d := sha256.Sum256([]byte(msg))
	return d[:]
}

// verifySig checks the signature of pt with k, which the caller has already
// checked to be of the algorithm's key type.
func verifySig(pt *parsedJWT, k *jwk) error {
	alg := pt.header.Alg
	bad := errors.New("invalid signature")
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		h := algHash(alg)
		d := digest(h, pt.signed)
		var err error
		if alg[0] == 'P' {
			err = rsa.VerifyPSS(pub, h, d, pt.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		} else {
			err = rsa.VerifyPKCS1v15(pub, h, d, pt.sig)
		}
		if err != nil {
			return bad
		}
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(pt.sig) != 2*size {
			return bad
		}
		r := new(big.Int).SetBytes(pt.sig[:size])
		s := new(big.Int).SetBytes(pt.sig[size:])
		if !ecdsa.Verify(pub, digest(algHash(alg), pt.signed), r, s) {
			return bad
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, []byte(pt.signed), pt.sig) {
			return bad
		}
	default:
		return bad
	}
	return nil
}

// jwk is one usable verification key of the issuer's JWKS.
type jwk struct {
	kid string
	kty string
	alg string // "" when the JWK does not pin one
	crv string
	pub crypto.PublicKey
}

// fits reports whether k may verify a token signed with alg.
func (k *jwk) fits(alg string) bool {
	kty, ok := algKty[alg]
	if !ok || kty != k.kty {
		return false
	}
	if k.alg != "" && k.alg != alg && !(k.kty == "OKP" && (k.alg == "EdDSA" || k.alg == "Ed25519")) {
		return false
	}
	if c, ok := algCurve[alg]; ok && c != k.crv {
		return false
	}
	return true
}

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS returns the signature keys of a JWKS document, skipping keys
// it cannot use (encryption keys, symmetric keys, unknown types, RSA keys
// under 2048 bits) rather than failing the whole set.
func parseJWKS(b []byte) ([]*jwk, error) {
	var doc struct {
		Keys []rawJWK `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var out []*jwk
	for _, r := range doc.Keys {
		if r.Use != "" && r.Use != "sig" {
			continue
		}
		k := &jwk{kid: r.Kid, kty: r.Kty, alg: r.Alg, crv: r.Crv}
		switch r.Kty {
		case "RSA":
			n, err1 := b64.DecodeString(r.N)
			e, err2 := b64.DecodeString(r.E)
			if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
				continue
			}
			pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
			for _, c := range e {
				pub.E = pub.E<<8 | int(c)
			}
			if pub.N.BitLen() < 2048 || pub.E < 3 || pub.E%2 == 0 {
				continue
			}
			k.pub = pub
		case "EC":
			var curve elliptic.Curve
			switch r.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			size := (curve.Params().BitSize + 7) / 8
			x, err1 := b64.DecodeString(r.X)
			y, err2 := b64.DecodeString(r.Y)
			if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
				continue
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(curve, bytes.Join([][]byte{{4}, x, y}, nil))
			if err != nil {
				continue // not on the curve
			}
			k.pub = pub
		case "OKP":
			x, err := b64.DecodeString(r.X)
			if r.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
				continue
			}
			k.pub = ed25519.PublicKey(x)
		default:
			continue
		}
		out = append(out, k)
	}
	return out, nil
}

// audience is the aud claim: a string or an array of strings (RFC 7519
// §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errors.New("aud: want a string or an array of strings")
	}
	*a = ss
	return nil
}

// numericDate is a JSON number of seconds since the epoch.
type numericDate struct{ t time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("date claim: want a number")
	}
	if f < 0 || f > 1e11 {
		return errors.New("date claim out of range")
	}
	sec := int64(f)
	d.t = time.Unix(sec, int64((f-float64(sec))*1e9))
	return nil
}

type roles struct {
	Roles []string `json:"roles"`
}

// rawClaims are the claims the middleware reads, as Keycloak and gatehouse
// name them.
type rawClaims struct {
	Iss            string           `json:"iss"`
	Sub            string           `json:"sub"`
	Aud            audience         `json:"aud"`
	Exp            *numericDate     `json:"exp"`
	Nbf            *numericDate     `json:"nbf"`
	Iat            *numericDate     `json:"iat"`
	Jti            string           `json:"jti"`
	Typ            string           `json:"typ"`
	Azp            string           `json:"azp"`
	Sid            string           `json:"sid"`
	Scope          string           `json:"scope"`
	Username       string           `json:"preferred_username"`
	Email          string           `json:"email"`
	RealmAccess    roles            `json:"realm_access"`
	ResourceAccess map[string]roles `json:"resource_access"`
}
