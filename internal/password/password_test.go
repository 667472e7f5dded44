package password

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// cheap are parameters that keep tests fast; the defaults are exercised by
// the Keycloak vectors and the benchmarks.
var cheap = Params{Memory: 64, Iterations: 1, Parallelism: 1, KeyLen: 32, SaltLen: 16}

func TestDefaultParamsAreKeycloaks(t *testing.T) {
	want := Params{Memory: 7168, Iterations: 5, Parallelism: 1, KeyLen: 32, SaltLen: 16}
	if got := DefaultParams(); got != want {
		t.Fatalf("DefaultParams = %+v, want %+v", got, want)
	}
	if got := NewHasher(Params{}).Params(); got != want {
		t.Fatalf("NewHasher(Params{}).Params() = %+v, want defaults %+v", got, want)
	}
}

func TestNewHasherClampsToVerifiableBounds(t *testing.T) {
	h := NewHasher(Params{Memory: 1, Iterations: 1, Parallelism: 4, KeyLen: 1, SaltLen: 1 << 20})
	p := h.Params()
	if p.Memory != 32 || p.KeyLen != minHashLen || p.SaltLen != maxSaltLen {
		t.Fatalf("Params = %+v, want memory 32, key %d, salt %d", p, minHashLen, maxSaltLen)
	}
	enc, _ := h.Hash("x")
	if ok, rehash := h.Verify(enc, "x"); !ok || rehash {
		t.Fatalf("Verify of own clamped hash = %v, %v", ok, rehash)
	}
}

func TestHashVerify(t *testing.T) {
	h := NewHasher(cheap)
	enc, err := h.Hash(knownPassword)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(enc) {
		t.Fatalf("Hash = %q, not the PHC argon2id form", enc)
	}
	if ok, rehash := h.Verify(enc, knownPassword); !ok || rehash {
		t.Fatalf("Verify(right) = %v, %v; want true, false", ok, rehash)
	}
	if ok, _ := h.Verify(enc, wrongPassword); ok {
		t.Fatal("Verify accepted a wrong password")
	}
	enc2, _ := h.Hash(knownPassword)
	if enc2 == enc {
		t.Fatal("two hashes of one password are equal: salt not random")
	}

	// The hash is plain argon2id: x/crypto computes the same bytes.
	d, err := parse(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := argon2.IDKey([]byte(knownPassword), d.salt, 1, 64, 1, 32)
	if !bytes.Equal(d.hash, want) {
		t.Fatal("stored hash is not argon2id of the password")
	}
}

func TestVerifyRehashOnParamChange(t *testing.T) {
	enc, _ := NewHasher(cheap).Hash("pw")
	for _, p := range []Params{
		{Memory: 128, Iterations: 1, Parallelism: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 64, Iterations: 2, Parallelism: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 64, Iterations: 1, Parallelism: 2, KeyLen: 32, SaltLen: 16},
		{Memory: 64, Iterations: 1, Parallelism: 1, KeyLen: 16, SaltLen: 16},
		{Memory: 64, Iterations: 1, Parallelism: 1, KeyLen: 32, SaltLen: 8},
	} {
		if ok, rehash := NewHasher(p).Verify(enc, "pw"); !ok || !rehash {
			t.Errorf("Verify at %+v = %v, %v; want true, true", p, ok, rehash)
		}
	}
	// A hash that does not verify is never to be rehashed.
	if ok, rehash := NewHasher(DefaultParams()).Verify(enc, "other"); ok || rehash {
		t.Errorf("Verify(wrong) = %v, %v", ok, rehash)
	}
}

// cliVectors were produced by the argon2 reference CLI
// (echo -n "correct horse battery staple" | argon2 gatehouse-salt16 ... -e).
// They cover every type and version, several lanes, memory that is not a
// multiple of 4*lanes, and output longer than 64 bytes (the long form of
// argon2's H').
var cliVectors = []string{
	"$argon2id$v=19$m=7168,t=5,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$e1N19spcSfMgJnq/ghhqw8GBpcqHH1iMjN4EPZvWDGU",
	"$argon2i$v=19$m=1024,t=3,p=2$Z2F0ZWhvdXNlLXNhbHQxNg$8IFu5DlpnYFwR3Ll1vpLwvoFgjVbrserp92SE1/7Pyc",
	"$argon2d$v=19$m=1000,t=2,p=3$Z2F0ZWhvdXNlLXNhbHQxNg$fnCWccjLbfJsufRQgHi1XdeBwiQIZM/4cx2oyMO3mSc",
	"$argon2id$v=16$m=256,t=3,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$t42dU+0CZeVL1DLzog47rYAhXimtxVOM0XT0DIqPE1M",
	"$argon2d$v=16$m=512,t=2,p=2$Z2F0ZWhvdXNlLXNhbHQxNg$+mapSrDVU2olJTLKcIXV86HZxbHYxcqqjPj53DTGmOabyAxJNZ8aHWl60TdrOoSBwg9lc4rpjr9QNYFAvUTy5sdpLDPYgS0TBfuwNYzxxotN50SfL9BeWZpWWTgzOjQMrzfM8Q",
	"$argon2i$v=16$m=64,t=1,p=4$Z2F0ZWhvdXNlLXNhbHQxNg$juL6lw+pS7/d75Y6IkZYpw",
	"$argon2d$v=19$m=128,t=3,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$PH2eEPR/83Mjl/GlRaaimuySD91UOLCWpualrrOjOkGd54e4c3bS3OI2KrqQoYTZXA06VNN1qTkFpZbLXSa/nw",
	"$argon2id$v=19$m=300,t=2,p=2$Z2F0ZWhvdXNlLXNhbHQxNg$9FeoxwctqncP9w8+MePwj7DFSAIi358s+N0br6/6V8malaGzStKapxad6Vzvv0NYygtIRvY/PlJTjY/uL0sQlZs",
}

func TestArgon2ReferenceCLIVectors(t *testing.T) {
	h := NewHasher(cheap)
	for _, enc := range cliVectors {
		if ok, rehash := h.Verify(enc, knownPassword); !ok || !rehash {
			t.Errorf("Verify(%s, right) = %v, %v; want true, true", enc, ok, rehash)
		}
		if ok, _ := h.Verify(enc, wrongPassword); ok {
			t.Errorf("Verify(%s, wrong) accepted", enc)
		}
		// The portable implementation alone must agree too (x/crypto
		// answers the id and i vectors at version 19 in Verify).
		d, err := parse(enc)
		if err != nil {
			t.Fatal(err)
		}
		got := argon2Ref(argon2Mode(d.alg), d.version, []byte(knownPassword), d.salt, d.iterations, d.memory, uint32(d.parallelism), uint32(len(d.hash)))
		if !bytes.Equal(got, d.hash) {
			t.Errorf("argon2Ref disagrees with the reference CLI on %s", enc)
		}
	}
}

func TestArgon2RefMatchesXCrypto(t *testing.T) {
	salt := []byte("0123456789abcdef")
	for _, c := range []struct {
		t, m   uint32
		p      uint8
		keyLen uint32
	}{
		{1, 8, 1, 32}, {2, 64, 1, 16}, {3, 100, 3, 64}, {1, 270, 2, 129}, {2, 1100, 1, 32}, {1, 96, 5, 4},
	} {
		pw := []byte(fmt.Sprintf("pw-%d-%d", c.t, c.m))
		if got, want := argon2Ref(argon2ModeID, argon2Version13, pw, salt, c.t, c.m, uint32(c.p), c.keyLen),
			argon2.IDKey(pw, salt, c.t, c.m, c.p, c.keyLen); !bytes.Equal(got, want) {
			t.Errorf("argon2id %+v: ref %x, x/crypto %x", c, got, want)
		}
		if got, want := argon2Ref(argon2ModeI, argon2Version13, pw, salt, c.t, c.m, uint32(c.p), c.keyLen),
			argon2.Key(pw, salt, c.t, c.m, c.p, c.keyLen); !bytes.Equal(got, want) {
			t.Errorf("argon2i %+v: ref %x, x/crypto %x", c, got, want)
		}
	}
}

var malformed = []string{
	"",
	"$",
	"$$",
	"argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
	"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g$",
	"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=64,t=1,p=256$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=7,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=33554432,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=64,t=99999,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$t=1,m=64,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=064,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=+64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=64,t=1,p=1,k=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ=$aGFzaGhhc2g",
	"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFz",
	"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGF*aGhhc2g",
	"$argon2x$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$pbkdf2-sha256$i=0$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$pbkdf2-sha256$i=100000000$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$pbkdf2-sha256$n=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$pbkdf2-sha256$i=1$c2FsdHNhbHQ",
	"$pbkdf2-md5$i=1$c2FsdHNhbHQ$aGFzaGhhc2g",
	"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
	"$pbkdf2-sha256$i=1$" + strings.Repeat("A", 5000) + "$aGFzaGhhc2g",
}

func TestVerifyMalformed(t *testing.T) {
	h := NewHasher(cheap)
	for _, enc := range malformed {
		if ok, rehash := h.Verify(enc, "pw"); ok || rehash {
			t.Errorf("Verify(%q) = %v, %v", enc, ok, rehash)
		}
		if _, err := parse(enc); err == nil {
			t.Errorf("parse(%q) succeeded", enc)
		}
		if a := Algorithm(enc); a != "" {
			t.Errorf("Algorithm(%q) = %q, want empty", enc, a)
		}
	}
}

// The minimal well-formed hashes just inside the bounds are accepted.
func TestParseBoundaries(t *testing.T) {
	for _, enc := range []string{
		"$argon2id$v=19$m=8,t=1,p=1$$aGFzaA",
		"$argon2d$v=16$m=2040,t=1,p=255$c2FsdA$aGFzaA",
		"$pbkdf2-sha1$i=1$$aGFzaA",
		"$pbkdf2-sha512$i=10000000$c2FsdA$aGFzaA",
	} {
		d, err := parse(enc)
		if err != nil {
			t.Errorf("parse(%q): %v", enc, err)
			continue
		}
		if d.String() != enc {
			t.Errorf("parse(%q).String() = %q", enc, d.String())
		}
	}
}

// BenchmarkWrongPassword, BenchmarkDummy and BenchmarkMalformedHash are
// compared with benchstat: an unknown user (VerifyDummy) and a corrupt
// stored hash must cost what a wrong password costs, so that response time
// tells a guesser nothing. Timing is measured here, never asserted in a
// unit test.
func BenchmarkWrongPassword(b *testing.B) {
	h := NewHasher(DefaultParams())
	enc, _ := h.Hash("pw")
	for b.Loop() {
		h.Verify(enc, "wrong")
	}
}

func BenchmarkDummy(b *testing.B) {
	h := NewHasher(DefaultParams())
	for b.Loop() {
		h.VerifyDummy("wrong")
	}
}

func BenchmarkMalformedHash(b *testing.B) {
	h := NewHasher(DefaultParams())
	for b.Loop() {
		h.Verify("$argon2id$garbage", "wrong")
	}
}

// FuzzVerify: arbitrary encoded strings never panic and never verify
// unless they parse. Hashes whose parameters are valid but expensive are
// skipped after parsing, to keep the fuzzer fast; the bounds in parse are
// what protects production from those.
func FuzzVerify(f *testing.F) {
	for _, enc := range malformed {
		f.Add(enc, "pw")
	}
	for _, enc := range cliVectors {
		f.Add(enc, knownPassword)
	}
	for _, v := range keycloakVectors {
		f.Add(v.encoded, knownPassword)
	}
	f.Add("$argon2d$v=16$m=16,t=1,p=2$c2FsdA$aGFzaA", "")
	h := NewHasher(Params{Memory: 8, Iterations: 1, Parallelism: 1, KeyLen: 4, SaltLen: 0})
	f.Fuzz(func(t *testing.T, enc, pw string) {
		d, err := parse(enc)
		if err == nil {
			if d.String() != enc {
				t.Fatalf("parse(%q) is not canonical: %q", enc, d.String())
			}
			if d.isArgon2() && uint64(d.memory)*uint64(d.iterations) > 4096 ||
				!d.isArgon2() && d.iterations > 5000 {
				return
			}
		}
		ok, rehash := h.Verify(enc, pw)
		if err != nil && (ok || rehash) {
			t.Fatalf("Verify(%q) = %v, %v for an unparsable hash", enc, ok, rehash)
		}
		_ = Algorithm(enc)
	})
}

func TestHashIsArgon2idForAnyPassword(t *testing.T) {
	h := NewHasher(cheap)
	long := make([]byte, 4096)
	rand.Read(long)
	for _, pw := range []string{"", "ü€😀", string(long), "a\x00b"} {
		enc, err := h.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := h.Verify(enc, pw); !ok {
			t.Errorf("Verify rejected its own hash of %q", pw[:min(len(pw), 10)])
		}
	}
	// A NUL does not truncate the password.
	enc, _ := h.Hash("a\x00b")
	if ok, _ := h.Verify(enc, "a"); ok {
		t.Error("password truncated at NUL")
	}
}

func BenchmarkArgon2idVerify(b *testing.B) {
	h := NewHasher(DefaultParams())
	enc, _ := h.Hash(knownPassword)
	b.ResetTimer()
	for b.Loop() {
		h.Verify(enc, knownPassword)
	}
}

func BenchmarkPBKDF2SHA256Verify(b *testing.B) {
	h := NewHasher(DefaultParams())
	enc := keycloakVectors[1].encoded // 27,500 iterations, 32-byte key
	for b.Loop() {
		h.Verify(enc, knownPassword)
	}
}

// BenchmarkArgon2dPortableVerify measures the portable implementation
// (legacy argon2d and version 1.0 hashes) at Keycloak's default cost.
func BenchmarkArgon2dPortableVerify(b *testing.B) {
	h := NewHasher(DefaultParams())
	enc := "$argon2d$" + strings.TrimPrefix(cliVectors[0], "$argon2id$")
	for b.Loop() {
		h.Verify(enc, knownPassword)
	}
}

// Hashing waits for a free slot: with every slot taken, a Verify does not
// start its argon2 work until one is given back.
func TestVerifyWaitsForASlot(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Iterations: 1})
	enc, _ := h.Hash("pw")
	for i := 0; i < cap(slots); i++ {
		slots <- struct{}{}
	}
	done := make(chan bool)
	go func() {
		ok, _ := h.Verify(enc, "pw")
		done <- ok
	}()
	select {
	case <-done:
		t.Fatal("Verify ran with every slot taken")
	case <-time.After(100 * time.Millisecond):
	}
	<-slots
	if ok := <-done; !ok {
		t.Fatal("Verify failed after a slot was freed")
	}
	for i := 1; i < cap(slots); i++ {
		<-slots
	}
}

// A caller that stops waiting for a slot gets its context's error back at
// once, and no hash is computed for it.
func TestVerifyContextGivesUpWaiting(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Iterations: 1})
	enc, _ := h.Hash("pw")
	for i := 0; i < cap(slots); i++ {
		slots <- struct{}{}
	}
	defer func() {
		for i := 0; i < cap(slots); i++ {
			<-slots
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() {
		ok, _, err := h.VerifyContext(ctx, enc, "pw")
		if ok {
			err = errors.New("verified without a slot")
		}
		errs <- err
	}()
	go func() { errs <- h.VerifyDummyContext(ctx, "pw") }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("still waiting after the context ended")
		}
	}
	if len(slots) != cap(slots) {
		t.Fatalf("%d slots taken, want %d", len(slots), cap(slots))
	}
	// With a live context and a free slot, it verifies as before.
	<-slots
	defer func() { slots <- struct{}{} }()
	if ok, _, err := h.VerifyContext(context.Background(), enc, "pw"); !ok || err != nil {
		t.Fatalf("VerifyContext = %v, %v", ok, err)
	}
}
