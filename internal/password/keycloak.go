package password

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// keycloakName returns Keycloak's name (credentialData's "algorithm") for
// a PHC identifier.
func keycloakName(phc string) string {
	switch phc {
	case phcArgon2id, phcArgon2i, phcArgon2d:
		return "argon2"
	case phcPBKDF2SHA256:
		return "pbkdf2-sha256"
	case phcPBKDF2SHA512:
		return "pbkdf2-sha512"
	case phcPBKDF2SHA1:
		return "pbkdf2"
	}
	return ""
}

// argon2TypeName returns Argon2PasswordHashProvider's "type" parameter for
// an argon2 PHC identifier; argon2PHC is its inverse ("" if unknown).
func argon2TypeName(phc string) string {
	return strings.TrimPrefix(phc, "argon2")
}

func argon2PHC(typ string) string {
	switch typ {
	case "id", "i", "d":
		return "argon2" + typ
	}
	return ""
}

// kcSecretData is a password credential's secretData as Keycloak exports
// it (PasswordSecretData).
type kcSecretData struct {
	Value                string                `json:"value"`
	Salt                 string                `json:"salt"`
	AdditionalParameters map[string]stringList `json:"additionalParameters"`
}

// kcCredentialData is a password credential's credentialData as Keycloak
// exports it (PasswordCredentialData).
type kcCredentialData struct {
	HashIterations       int                   `json:"hashIterations"`
	Algorithm            string                `json:"algorithm"`
	AdditionalParameters map[string]stringList `json:"additionalParameters"`
}

// stringList is one value of Keycloak's additionalParameters, a
// MultivaluedHashMap that exports as arrays of strings. Hand-written import
// files sometimes give a bare string or number instead; both are accepted.
type stringList []string

// UnmarshalJSON accepts ["x", ...], "x" or a bare number.
func (l *stringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var ss []string
		if err := json.Unmarshal(b, &ss); err != nil {
			return err
		}
		*l = ss
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = stringList{s}
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("additional parameter must be a string, a number or an array of strings")
	}
	*l = stringList{n.String()}
	return nil
}

// kcArgon2Params is Argon2PasswordHashProvider's additionalParameters in
// the order Keycloak writes them, so that an export reads like Keycloak's.
type kcArgon2Params struct {
	HashLength  []string `json:"hashLength"`
	Memory      []string `json:"memory"`
	Type        []string `json:"type"`
	Version     []string `json:"version"`
	Parallelism []string `json:"parallelism"`
}

// FromKeycloak converts a Keycloak-exported password credential (the
// "secretData" and "credentialData" JSON strings of a credential of type
// "password") to an encoded hash that Verify accepts. It understands
// Keycloak's "argon2" (types id, i and d; versions 1.3 and 1.0),
// "pbkdf2-sha256", "pbkdf2-sha512" and "pbkdf2" (HMAC-SHA1). For pbkdf2 the
// derived key length is that of the stored value, as in Keycloak's own
// verification, so hashes from every Keycloak version convert.
func FromKeycloak(secretData, credentialData string) (string, error) {
	var sd kcSecretData
	if err := json.Unmarshal([]byte(secretData), &sd); err != nil {
		return "", fmt.Errorf("keycloak secretData: %w", err)
	}
	var cd kcCredentialData
	if err := json.Unmarshal([]byte(credentialData), &cd); err != nil {
		return "", fmt.Errorf("keycloak credentialData: %w", err)
	}
	var d decoded
	var err error
	if d.hash, err = decodeKeycloakBase64(sd.Value); err != nil {
		return "", fmt.Errorf("keycloak secretData value: %w", err)
	}
	if d.salt, err = decodeKeycloakBase64(sd.Salt); err != nil {
		return "", fmt.Errorf("keycloak secretData salt: %w", err)
	}
	if cd.HashIterations < 1 || int64(cd.HashIterations) > 1<<32-1 {
		return "", fmt.Errorf("keycloak credentialData hashIterations %d out of range", cd.HashIterations)
	}
	d.iterations = uint32(cd.HashIterations)
	switch cd.Algorithm {
	case "argon2":
		if err := fromKeycloakArgon2(&d, cd.AdditionalParameters); err != nil {
			return "", err
		}
	case "":
		return "", errors.New("keycloak credentialData has no algorithm")
	default:
		alg := map[string]string{
			"pbkdf2-sha256": phcPBKDF2SHA256,
			"pbkdf2-sha512": phcPBKDF2SHA512,
			"pbkdf2":        phcPBKDF2SHA1,
		}[cd.Algorithm]
		if alg == "" {
			return "", fmt.Errorf("keycloak password algorithm %q is not supported (want argon2, pbkdf2-sha256, pbkdf2-sha512 or pbkdf2)", cd.Algorithm)
		}
		d.alg = alg
	}
	if err := d.validate(); err != nil {
		return "", fmt.Errorf("keycloak %s credential: %w", cd.Algorithm, err)
	}
	return d.String(), nil
}

func fromKeycloakArgon2(d *decoded, params map[string]stringList) error {
	get := func(key string) (string, error) {
		v := params[key]
		if len(v) == 0 {
			return "", fmt.Errorf("keycloak argon2 credential lacks additionalParameters.%s", key)
		}
		return v[0], nil
	}
	getInt := func(key string, max uint64) (uint64, error) {
		s, err := get(key)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n > max {
			return 0, fmt.Errorf("keycloak argon2 additionalParameters.%s %q is not a number in range", key, s)
		}
		return n, nil
	}
	typ, err := get("type")
	if err != nil {
		return err
	}
	if d.alg = argon2PHC(typ); d.alg == "" {
		return fmt.Errorf("keycloak argon2 type %q is not id, i or d", typ)
	}
	ver, err := get("version")
	if err != nil {
		return err
	}
	switch ver {
	case "1.3":
		d.version = argon2Version13
	case "1.0":
		d.version = argon2Version10
	default:
		return fmt.Errorf("keycloak argon2 version %q is not 1.3 or 1.0", ver)
	}
	hashLength, err := getInt("hashLength", maxHashLen)
	if err != nil {
		return err
	}
	if hashLength != uint64(len(d.hash)) {
		// Keycloak compares the full hashLength output with the stored value,
		// so a mismatch means no password would ever verify.
		return fmt.Errorf("keycloak argon2 hashLength %d does not match the %d-byte stored value", hashLength, len(d.hash))
	}
	memory, err := getInt("memory", maxArgon2Memory)
	if err != nil {
		return err
	}
	parallelism, err := getInt("parallelism", maxArgon2Parallelism)
	if err != nil {
		return err
	}
	d.memory, d.parallelism = uint32(memory), uint8(parallelism)
	return nil
}

// decodeKeycloakBase64 decodes Keycloak's base64 (standard alphabet,
// padded); unpadded input from hand-written files is accepted too.
func decodeKeycloakBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not standard base64")
	}
	return b, nil
}

// ToKeycloak converts an encoded hash to the secretData and credentialData
// JSON strings of a Keycloak password credential, for realm export. For
// every hash that Hash or FromKeycloak produced,
// FromKeycloak(ToKeycloak(x)) returns x.
func ToKeycloak(encoded string) (secretData, credentialData string, err error) {
	d, err := parse(encoded)
	if err != nil {
		return "", "", fmt.Errorf("encoded hash: %w", err)
	}
	sd, err := json.Marshal(struct {
		Value                string   `json:"value"`
		Salt                 string   `json:"salt"`
		AdditionalParameters struct{} `json:"additionalParameters"`
	}{
		Value: base64.StdEncoding.EncodeToString(d.hash),
		Salt:  base64.StdEncoding.EncodeToString(d.salt),
	})
	if err != nil {
		return "", "", err
	}
	var params any = struct{}{}
	if d.isArgon2() {
		typ := argon2TypeName(d.alg)
		ver := "1.3"
		if d.version == argon2Version10 {
			ver = "1.0"
		}
		params = kcArgon2Params{
			HashLength:  []string{strconv.Itoa(len(d.hash))},
			Memory:      []string{strconv.FormatUint(uint64(d.memory), 10)},
			Type:        []string{typ},
			Version:     []string{ver},
			Parallelism: []string{strconv.Itoa(int(d.parallelism))},
		}
	}
	cd, err := json.Marshal(struct {
		HashIterations       uint32 `json:"hashIterations"`
		Algorithm            string `json:"algorithm"`
		AdditionalParameters any    `json:"additionalParameters"`
	}{d.iterations, keycloakName(d.alg), params})
	if err != nil {
		return "", "", err
	}
	return string(sd), string(cd), nil
}

// Algorithm returns Keycloak's name for the algorithm of an encoded hash
// ("argon2", "pbkdf2-sha256", "pbkdf2-sha512" or "pbkdf2"), or "" if the
// hash is malformed.
func Algorithm(encoded string) string {
	d, err := parse(encoded)
	if err != nil {
		return ""
	}
	return keycloakName(d.alg)
}
