package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PHC identifiers of the algorithms an encoded hash may name. The pbkdf2
// ones are gatehouse's own, shaped like the PHC argon2 strings so that every
// stored hash reads the same way.
const (
	phcArgon2id     = "argon2id"
	phcArgon2i      = "argon2i"
	phcArgon2d      = "argon2d"
	phcPBKDF2SHA256 = "pbkdf2-sha256"
	phcPBKDF2SHA512 = "pbkdf2-sha512"
	phcPBKDF2SHA1   = "pbkdf2-sha1"
)

// Argon2 versions as they appear in the v= field and in the hash input.
const (
	argon2Version10 = 0x10
	argon2Version13 = 0x13
)

// Bounds on what an encoded hash may ask for. A stored hash comes from an
// import file or a database that an attacker may have touched; without
// bounds one crafted hash would make every login for that user allocate
// gigabytes or spin for minutes.
const (
	maxEncodedLen        = 4096
	minSaltLen           = 0 // Keycloak itself accepts an empty salt
	maxSaltLen           = 1024
	minHashLen           = 4
	maxHashLen           = 1024
	maxArgon2Memory      = 1 << 20 // KiB: 1 GiB
	maxArgon2Iterations  = 1 << 10
	maxPBKDF2Iterations  = 10_000_000
	argon2MinMemoryPerP  = 8 // the argon2 spec's floor: 8 KiB per lane
	maxArgon2Parallelism = 255
)

// b64 is the PHC string format's base64: standard alphabet, no padding,
// strict so that every hash has exactly one encoding (and so one
// FromKeycloak/ToKeycloak round trip).
var b64 = base64.RawStdEncoding.Strict()

// decoded is an encoded hash taken apart.
type decoded struct {
	alg         string // one of the phc* identifiers
	version     uint32 // argon2 only: argon2Version10 or argon2Version13
	memory      uint32 // argon2 only, KiB
	iterations  uint32
	parallelism uint8 // argon2 only
	salt        []byte
	hash        []byte
}

func (d decoded) isArgon2() bool {
	return d.alg == phcArgon2id || d.alg == phcArgon2i || d.alg == phcArgon2d
}

// String renders d in the canonical encoded form.
func (d decoded) String() string {
	if d.isArgon2() {
		return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", d.alg, d.version,
			d.memory, d.iterations, d.parallelism,
			b64.EncodeToString(d.salt), b64.EncodeToString(d.hash))
	}
	return fmt.Sprintf("$%s$i=%d$%s$%s", d.alg, d.iterations,
		b64.EncodeToString(d.salt), b64.EncodeToString(d.hash))
}

// validate checks d against the bounds above, so that code computing a hash
// from d may rely on them (x/crypto's argon2 panics on zero parallelism or
// iterations).
func (d decoded) validate() error {
	if len(d.salt) < minSaltLen || len(d.salt) > maxSaltLen {
		return fmt.Errorf("salt length %d out of range [%d, %d]", len(d.salt), minSaltLen, maxSaltLen)
	}
	if len(d.hash) < minHashLen || len(d.hash) > maxHashLen {
		return fmt.Errorf("hash length %d out of range [%d, %d]", len(d.hash), minHashLen, maxHashLen)
	}
	switch d.alg {
	case phcArgon2id, phcArgon2i, phcArgon2d:
		if d.version != argon2Version10 && d.version != argon2Version13 {
			return fmt.Errorf("unsupported argon2 version %#x", d.version)
		}
		if d.iterations < 1 || d.iterations > maxArgon2Iterations {
			return fmt.Errorf("argon2 iterations %d out of range [1, %d]", d.iterations, maxArgon2Iterations)
		}
		if d.parallelism < 1 {
			return errors.New("argon2 parallelism must be at least 1")
		}
		if d.memory < argon2MinMemoryPerP*uint32(d.parallelism) || d.memory > maxArgon2Memory {
			return fmt.Errorf("argon2 memory %d KiB out of range [%d, %d]", d.memory,
				argon2MinMemoryPerP*uint32(d.parallelism), maxArgon2Memory)
		}
	case phcPBKDF2SHA256, phcPBKDF2SHA512, phcPBKDF2SHA1:
		if d.iterations < 1 || d.iterations > maxPBKDF2Iterations {
			return fmt.Errorf("pbkdf2 iterations %d out of range [1, %d]", d.iterations, maxPBKDF2Iterations)
		}
	default:
		return fmt.Errorf("unknown algorithm %q", d.alg)
	}
	return nil
}

// parse takes an encoded hash apart and validates it. It accepts only the
// canonical form that String produces.
func parse(encoded string) (decoded, error) {
	var d decoded
	if len(encoded) > maxEncodedLen {
		return d, errors.New("encoded hash too long")
	}
	if strings.ContainsAny(encoded, "\r\n") {
		// encoding/base64 skips newlines; a hash with one would verify
		// while not being the canonical spelling.
		return d, errors.New("encoded hash contains a line break")
	}
	parts := strings.Split(encoded, "$")
	if len(parts) < 2 || parts[0] != "" {
		return d, errors.New("encoded hash does not start with $algorithm$")
	}
	d.alg = parts[1]
	var err error
	switch d.alg {
	case phcArgon2id, phcArgon2i, phcArgon2d:
		if len(parts) != 6 {
			return d, errors.New("argon2 hash must have the form $argon2X$v=V$m=M,t=T,p=P$salt$hash")
		}
		v, ok := strings.CutPrefix(parts[2], "v=")
		if !ok {
			return d, errors.New("argon2 hash lacks v=")
		}
		if d.version, err = parseUint32(v); err != nil {
			return d, fmt.Errorf("argon2 version: %w", err)
		}
		fields := strings.Split(parts[3], ",")
		if len(fields) != 3 {
			return d, errors.New("argon2 parameters must be m=M,t=T,p=P")
		}
		vals := [3]uint32{}
		for i, key := range [3]string{"m=", "t=", "p="} {
			s, ok := strings.CutPrefix(fields[i], key)
			if !ok {
				return d, fmt.Errorf("argon2 parameter %d must start with %s", i+1, key)
			}
			if vals[i], err = parseUint32(s); err != nil {
				return d, fmt.Errorf("argon2 parameter %s: %w", key[:1], err)
			}
		}
		if vals[2] > maxArgon2Parallelism {
			return d, fmt.Errorf("argon2 parallelism %d above %d", vals[2], maxArgon2Parallelism)
		}
		d.memory, d.iterations, d.parallelism = vals[0], vals[1], uint8(vals[2])
		parts = parts[4:]
	case phcPBKDF2SHA256, phcPBKDF2SHA512, phcPBKDF2SHA1:
		if len(parts) != 5 {
			return d, errors.New("pbkdf2 hash must have the form $pbkdf2-H$i=N$salt$hash")
		}
		s, ok := strings.CutPrefix(parts[2], "i=")
		if !ok {
			return d, errors.New("pbkdf2 hash lacks i=")
		}
		if d.iterations, err = parseUint32(s); err != nil {
			return d, fmt.Errorf("pbkdf2 iterations: %w", err)
		}
		parts = parts[3:]
	default:
		return d, fmt.Errorf("unknown algorithm %q", d.alg)
	}
	if d.salt, err = b64.DecodeString(parts[0]); err != nil {
		return d, errors.New("salt is not unpadded standard base64")
	}
	if d.hash, err = b64.DecodeString(parts[1]); err != nil {
		return d, errors.New("hash is not unpadded standard base64")
	}
	if err := d.validate(); err != nil {
		return d, err
	}
	return d, nil
}

// parseUint32 parses a canonical decimal: digits only, no sign, no leading
// zero, so that one hash has one spelling.
func parseUint32(s string) (uint32, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("number %q has a leading zero", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return uint32(n), nil
}
