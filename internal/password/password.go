// Package password hashes and verifies user passwords and client secrets.
//
// User passwords are stored as argon2id in the PHC string format
// ($argon2id$v=19$m=7168,t=5,p=1$salt$hash), with Keycloak's default
// parameters so that a realm moved between Keycloak and gatehouse costs the
// same to log into. Hashes imported from Keycloak (argon2 of any type and
// version, pbkdf2 with SHA-1, SHA-256 or SHA-512) verify as they are; Verify
// reports when a hash should be replaced by one at the current parameters,
// which the caller does after the next successful login.
//
// Client secrets are generated, 256-bit random values and need no slow hash:
// they are stored as HMAC-SHA256 under a key kept outside the database (see
// SecretHasher).
package password

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"runtime"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id parameters. DefaultParams are Keycloak's
// (Argon2PasswordHashProviderFactory).
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Iterations is the number of passes over the memory.
	Iterations uint32
	// Parallelism is the number of lanes (and of goroutines computing them).
	Parallelism uint8
	// KeyLen is the length of the stored hash in bytes.
	KeyLen uint32
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
}

// DefaultParams returns Keycloak's argon2 defaults: argon2id version 1.3,
// 7168 KiB, 5 iterations, parallelism 1, a 32-byte hash and a 16-byte salt.
func DefaultParams() Params {
	return Params{Memory: 7168, Iterations: 5, Parallelism: 1, KeyLen: 32, SaltLen: 16}
}

// Hasher hashes new passwords with argon2id at fixed parameters and
// verifies passwords against hashes of every supported algorithm. It is
// safe for concurrent use.
type Hasher struct {
	p Params
	// dummy is a hash at p of a random password that nobody knows, so that
	// VerifyDummy costs exactly what a real Verify costs.
	dummy decoded
}

// NewHasher returns a Hasher for p. A zero field takes DefaultParams'
// value; a field beyond what Verify accepts is clamped to that bound (a
// Hasher must never produce hashes it cannot verify).
func NewHasher(p Params) *Hasher {
	def := DefaultParams()
	if p.Iterations == 0 {
		p.Iterations = def.Iterations
	}
	if p.Parallelism == 0 {
		p.Parallelism = def.Parallelism
	}
	if p.Memory == 0 {
		p.Memory = def.Memory
	}
	if p.KeyLen == 0 {
		p.KeyLen = def.KeyLen
	}
	if p.SaltLen == 0 {
		p.SaltLen = def.SaltLen
	}
	p.Iterations = min(p.Iterations, maxArgon2Iterations)
	p.Memory = min(max(p.Memory, argon2MinMemoryPerP*uint32(p.Parallelism)), maxArgon2Memory)
	p.KeyLen = min(max(p.KeyLen, minHashLen), maxHashLen)
	p.SaltLen = min(p.SaltLen, maxSaltLen)
	h := &Hasher{p: p}
	h.dummy = h.hash(rand.Text())
	return h
}

// Params returns the parameters h hashes with, after NewHasher's defaults
// and clamping.
func (h *Hasher) Params() Params { return h.p }

// Hash returns the argon2id hash of password at h's parameters in PHC
// string form: $argon2id$v=19$m=7168,t=5,p=1$<salt>$<hash>, salt and hash
// in unpadded standard base64. The error is always nil today; it is there so
// that a future source of randomness or hardware limit can report failure.
func (h *Hasher) Hash(password string) (string, error) {
	return h.hash(password).String(), nil
}

func (h *Hasher) hash(password string) decoded {
	release, _ := acquire(context.Background()) // never fails without a deadline
	defer release()
	salt := make([]byte, h.p.SaltLen)
	// crypto/rand.Read never returns an error (it aborts the program if
	// the system's randomness fails), so there is nothing to handle.
	_, _ = rand.Read(salt)
	d := decoded{
		alg:         phcArgon2id,
		version:     argon2Version13,
		memory:      h.p.Memory,
		iterations:  h.p.Iterations,
		parallelism: h.p.Parallelism,
		salt:        salt,
		hash:        argon2.IDKey([]byte(password), salt, h.p.Iterations, h.p.Memory, h.p.Parallelism, h.p.KeyLen),
	}
	return d
}

// Verify checks password against an encoded hash of any supported
// algorithm: argon2id, argon2i and argon2d PHC strings (versions 19 and 16)
// and $pbkdf2-sha256$, $pbkdf2-sha512$ and $pbkdf2-sha1$ strings. A
// malformed hash verifies nothing (and costs what VerifyDummy costs, so
// that it looks like any other failure). rehash is true when ok is true and
// the hash is not argon2id version 19 at exactly h's parameters: the caller
// should then store h.Hash(password).
func (h *Hasher) Verify(encoded, password string) (ok, rehash bool) {
	ok, rehash, _ = h.VerifyContext(context.Background(), encoded, password)
	return ok, rehash
}

// VerifyContext is Verify for a caller that may stop waiting: when ctx
// ends before a hashing slot is free, it returns ctx's error and computes
// nothing. A login whose client has hung up must not queue 20 ms of
// argon2 work that nobody will read; without this, a flood of requests
// that give up at once would keep the cores busy long after.
func (h *Hasher) VerifyContext(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	d, err := parse(encoded)
	if err != nil {
		return false, false, h.VerifyDummyContext(ctx, password)
	}
	got, err := derive(ctx, d, password)
	if err != nil {
		if ctx.Err() != nil {
			return false, false, ctx.Err()
		}
		return false, false, nil
	}
	if subtle.ConstantTimeCompare(got, d.hash) != 1 {
		return false, false, nil
	}
	current := d.alg == phcArgon2id && d.version == argon2Version13 &&
		d.memory == h.p.Memory && d.iterations == h.p.Iterations &&
		d.parallelism == h.p.Parallelism &&
		uint32(len(d.salt)) == h.p.SaltLen && uint32(len(d.hash)) == h.p.KeyLen
	return true, !current, nil
}

// VerifyDummy spends the time of a real Verify at h's parameters and
// discards the result. A login for an unknown user calls it, so that the
// answer's timing does not tell which usernames exist.
func (h *Hasher) VerifyDummy(password string) {
	_ = h.VerifyDummyContext(context.Background(), password)
}

// VerifyDummyContext is VerifyDummy that stops waiting, as VerifyContext
// does, when ctx ends.
func (h *Hasher) VerifyDummyContext(ctx context.Context, password string) error {
	got, err := derive(ctx, h.dummy, password)
	if err != nil {
		return err
	}
	subtle.ConstantTimeCompare(got, h.dummy.hash)
	return nil
}

// slots bounds how many hashes are computed at once to the number of
// cores that can run them. More at once would finish no sooner: they would
// share the cores and, each with its own megabytes of argon2 memory, evict
// one another from the caches, so a burst of logins would cost more CPU
// per login and a flood of them would hold 7 MiB per waiting request. A
// request over the bound waits here, holding only its goroutine.
var slots = make(chan struct{}, runtime.GOMAXPROCS(0))

// acquire waits for a free slot, or until ctx ends.
func acquire(ctx context.Context) (release func(), err error) {
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// derive computes the hash of password with d's algorithm, parameters and
// salt, with len(d.hash) bytes of output. d must have passed validate.
func derive(ctx context.Context, d decoded, password string) ([]byte, error) {
	release, err := acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	keyLen := len(d.hash)
	switch d.alg {
	case phcArgon2id, phcArgon2i, phcArgon2d:
		// x/crypto's assembly-backed argon2 covers what Keycloak and
		// gatehouse write today (id and i, version 1.3); argon2d and
		// version 1.0 take the portable implementation in argon2ref.go.
		switch {
		case d.alg == phcArgon2id && d.version == argon2Version13:
			return argon2.IDKey([]byte(password), d.salt, d.iterations, d.memory, d.parallelism, uint32(keyLen)), nil
		case d.alg == phcArgon2i && d.version == argon2Version13:
			return argon2.Key([]byte(password), d.salt, d.iterations, d.memory, d.parallelism, uint32(keyLen)), nil
		default:
			return argon2Ref(argon2Mode(d.alg), d.version, []byte(password), d.salt, d.iterations, d.memory, uint32(d.parallelism), uint32(keyLen)), nil
		}
	case phcPBKDF2SHA256:
		return pbkdf2.Key(sha256.New, password, d.salt, int(d.iterations), keyLen)
	case phcPBKDF2SHA512:
		return pbkdf2.Key(sha512.New, password, d.salt, int(d.iterations), keyLen)
	case phcPBKDF2SHA1:
		return pbkdf2.Key(sha1.New, password, d.salt, int(d.iterations), keyLen)
	}
	return nil, fmt.Errorf("unknown algorithm %q", d.alg)
}
