package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
)

// AEAD is what SealJSON and OpenJSON need: Manager's Seal and Open.
type AEAD interface {
	Seal(plain []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// SealJSON seals v's JSON with the master key into unpadded base64url: a
// value a browser or client carries (a cookie, an authorization code)
// that only this deployment can read or make. purpose is sealed in front
// of the JSON, so that a value made for one purpose never opens as
// another (a login cookie as an authorization code, say).
func SealJSON(a AEAD, purpose string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sealed, err := a.Seal(append([]byte(purpose), b...))
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// ErrPurpose is OpenJSON's answer to a value sealed for another purpose.
var ErrPurpose = errors.New("keys: sealed for another purpose")

// OpenJSON opens what SealJSON made for purpose into v. Callers bound the
// length of value first: it comes from a client.
func OpenJSON(a AEAD, purpose, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return err
	}
	plain, err := a.Open(raw)
	if err != nil {
		return err
	}
	rest, ok := bytes.CutPrefix(plain, []byte(purpose))
	if !ok {
		return ErrPurpose
	}
	return json.Unmarshal(rest, v)
}
