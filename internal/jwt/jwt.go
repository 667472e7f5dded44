// Package jwt implements the small subset of compact JWS (RFC 7515) and JWK
// (RFC 7517, RFC 7518, RFC 8037) that gatehouse needs to issue and check
// tokens.
//
// The algorithm that checks a signature is always chosen by the caller from
// the key it holds, never taken from the token: Verify refuses a key whose
// type does not fit the algorithm, so an HS256 token can never be checked
// with an RSA public key used as an HMAC secret, and Parse refuses "none".
// Headers that would let a token pick its own key (jku, jwk, x5u) or demand
// extensions (crit) are refused outright.
package jwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxTokenSize bounds the length of a compact JWS that Parse accepts. Real
// tokens are a few KiB at most; the bound keeps a hostile token from costing
// more than a small, fixed amount of work.
const MaxTokenSize = 16 << 10

// Algorithm names (RFC 7518 §3.1, RFC 8037 §3.1).
const (
	RS256 = "RS256"
	PS256 = "PS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
	HS256 = "HS256"
)

// Errors returned by this package; test with errors.Is. None of them carries
// any part of the token, so they are safe to log and to send to a client.
var (
	// ErrMalformed: the token is not a well-formed compact JWS.
	ErrMalformed = errors.New("jwt: malformed token")
	// ErrTooLarge: the token is longer than MaxTokenSize.
	ErrTooLarge = errors.New("jwt: token too large")
	// ErrUnsupportedAlg: the algorithm is unknown, "none", or not allowed.
	ErrUnsupportedAlg = errors.New("jwt: unsupported algorithm")
	// ErrForbiddenHeader: the header has a parameter gatehouse refuses.
	ErrForbiddenHeader = errors.New("jwt: forbidden header parameter")
	// ErrKeyType: the key does not fit the algorithm.
	ErrKeyType = errors.New("jwt: key type does not match algorithm")
	// ErrWeakKey: the key is too small to be used safely.
	ErrWeakKey = errors.New("jwt: key too weak")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("jwt: invalid signature")
)

// b64 is base64url without padding, refusing non-canonical trailing bits so
// that each token has exactly one encoding of its signature.
var b64 = base64.RawURLEncoding.Strict()

// Header is the part of a JOSE header gatehouse reads.
type Header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// Parsed is a decoded compact JWS whose signature has not been checked yet.
type Parsed struct {
	Header Header
	// Payload is the decoded payload (JSON claims, unchecked).
	Payload []byte
	// SigningInput is "base64url(header).base64url(payload)", the bytes the
	// signature covers.
	SigningInput []byte
	// Signature is the decoded signature.
	Signature []byte
}

// Parse splits and decodes a compact JWS without verifying it. It is strict:
// exactly three non-empty base64url parts without padding, a header that is a
// JSON object with unique member names and a string "alg" other than "none",
// and no crit, jku, jwk or x5u parameter. Whether the payload is a JSON object
// is left to the caller.
func Parse(token string) (*Parsed, error) {
	if len(token) > MaxTokenSize {
		return nil, ErrTooLarge
	}
	// One pass checks the alphabet (the base64 decoder would otherwise skip
	// CR and LF) and finds the two separators.
	d1, d2 := -1, -1
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			switch {
			case d1 < 0:
				d1 = i
			case d2 < 0:
				d2 = i
			default:
				return nil, malformed("more than three parts")
			}
		default:
			return nil, malformed("invalid character")
		}
	}
	if d2 < 0 {
		return nil, malformed("fewer than three parts")
	}
	hdrPart, payPart, sigPart := token[:d1], token[d1+1:d2], token[d2+1:]
	if hdrPart == "" || sigPart == "" {
		return nil, malformed("empty header or signature")
	}

	hdrJSON, err := decodePart(hdrPart)
	if err != nil {
		return nil, malformed("header is not base64url")
	}
	h, err := parseHeader(hdrJSON)
	if err != nil {
		return nil, err
	}
	payload, err := decodePart(payPart)
	if err != nil {
		return nil, malformed("payload is not base64url")
	}
	sig, err := decodePart(sigPart)
	if err != nil {
		return nil, malformed("signature is not base64url")
	}
	return &Parsed{
		Header:       h,
		Payload:      payload,
		SigningInput: []byte(token[:d2]),
		Signature:    sig,
	}, nil
}

func malformed(why string) error {
	return &parseError{why: why}
}

// parseError says what is wrong with a token while matching ErrMalformed.
type parseError struct{ why string }

func (e *parseError) Error() string        { return "jwt: malformed token: " + e.why }
func (e *parseError) Is(target error) bool { return target == ErrMalformed }

func decodePart(s string) ([]byte, error) {
	out := make([]byte, b64.DecodedLen(len(s)))
	n, err := b64.Decode(out, []byte(s))
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// parseHeader reads the header object member by member: encoding/json's
// Unmarshal would silently keep the last of two duplicate "alg" members and
// match member names case-insensitively, both of which let two readers of one
// token disagree about it. json.Valid checks the syntax first, so the scan
// below only has to find member boundaries in text known to be one valid
// JSON value.
func parseHeader(data []byte) (Header, error) {
	var h Header
	if !json.Valid(data) || !utf8.Valid(data) {
		return h, malformed("header is not valid JSON")
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return h, malformed("header is not a JSON object")
	}
	i = skipSpace(data, i+1)
	var seen []string
	haveAlg := false
	for data[i] != '}' {
		nameEnd := skipString(data, i)
		name, err := unquote(data[i:nameEnd])
		if err != nil {
			return h, malformed("header is not valid JSON")
		}
		if len(seen) == maxHeaderParams {
			return h, malformed("too many header parameters")
		}
		if slices.Contains(seen, name) {
			return h, malformed("duplicate header parameter")
		}
		seen = append(seen, name)
		i = skipSpace(data, nameEnd)
		i = skipSpace(data, i+1) // the colon
		valEnd := skipValue(data, i)
		val := data[i:valEnd]
		switch name {
		case "crit", "jku", "jwk", "x5u":
			return h, &forbiddenError{name: name}
		case "alg", "kid", "typ":
			if val[0] != '"' {
				return h, malformed("header parameter " + name + " is not a string")
			}
			v, err := unquote(val)
			if err != nil {
				return h, malformed("header is not valid JSON")
			}
			switch name {
			case "alg":
				h.Alg, haveAlg = v, true
			case "kid":
				h.Kid = v
			case "typ":
				h.Typ = v
			}
		}
		i = skipSpace(data, valEnd)
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if !haveAlg {
		return h, malformed("header has no alg")
	}
	if h.Alg == "" || strings.EqualFold(h.Alg, "none") {
		return h, ErrUnsupportedAlg
	}
	return h, nil
}

// maxHeaderParams bounds the members of a header (real ones have two to
// five), which keeps the duplicate check cheap on hostile input.
const maxHeaderParams = 32

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string starting at i.
func skipString(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// skipValue returns the index just past the JSON value starting at i.
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(data) && !strings.ContainsRune(",}] \t\r\n", rune(data[i])) {
		i++
	}
	return i
}

// unquote decodes a JSON string literal; the common case has no escapes.
func unquote(lit []byte) (string, error) {
	if bytes.IndexByte(lit, '\\') < 0 {
		return string(lit[1 : len(lit)-1]), nil
	}
	var s string
	err := json.Unmarshal(lit, &s)
	return s, err
}

// forbiddenError names the refused header parameter while matching
// ErrForbiddenHeader.
type forbiddenError struct{ name string }

func (e *forbiddenError) Error() string {
	return "jwt: forbidden header parameter " + e.name
}
func (e *forbiddenError) Is(target error) bool { return target == ErrForbiddenHeader }

// Sign builds the header {"alg","kid","typ"} (kid and typ only when not
// empty), and returns the compact JWS of payload, which must already be the
// marshalled JSON claims. The encoded header is computed once per signer and
// typ when s comes from NewSigner.
func Sign(s Signer, typ string, payload []byte) (string, error) {
	var hdr string
	if hc, ok := s.(headerCacher); ok {
		hdr = hc.encodedHeader(typ)
	} else {
		hdr = encodeHeader(s.Alg(), s.KID(), typ)
	}
	n := len(hdr) + 1 + b64.EncodedLen(len(payload))
	buf := make([]byte, 0, n+1+b64.EncodedLen(maxSigLen))
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	sig, err := s.Sign(buf[:n])
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}

// maxSigLen is the signature size of the largest key NewSigner creates
// signatures for in practice (RSA-4096); larger keys only cost one more
// allocation.
const maxSigLen = 512

func encodeHeader(alg, kid, typ string) string {
	// Marshalling a struct of three strings cannot fail.
	j, _ := json.Marshal(Header{Alg: alg, Kid: kid, Typ: typ})
	return b64.EncodeToString(j)
}
