package password

import (
	"strings"
	"testing"
)

const (
	knownPassword = "correct horse battery staple"
	wrongPassword = "correct horse battery stapler"
)

// keycloakVectors are password credentials in exactly the form Keycloak
// exports them, for knownPassword. The pbkdf2 values were computed with
// Python's hashlib.pbkdf2_hmac, the argon2 values with the argon2 reference
// CLI (Debian package argon2), independently of the code under test.
var keycloakVectors = []struct {
	name           string
	secretData     string
	credentialData string
	encoded        string
	algorithm      string
	rehash         bool // at DefaultParams
}{
	{
		name:           "pbkdf2-sha256 512-bit key (Keycloak before 24)",
		secretData:     `{"value":"XqOWF4mNpEn++ZgyCQs5fzeqoCcAIG/OxC2ZRg4Iqos5qcjlaTa7HQ409aAT+PtLp5TRA8mX/QL2jDQZqACF5w==","salt":"mx88Kn1OX2BxgpOktcbX6A==","additionalParameters":{}}`,
		credentialData: `{"hashIterations":27500,"algorithm":"pbkdf2-sha256","additionalParameters":{}}`,
		encoded:        "$pbkdf2-sha256$i=27500$mx88Kn1OX2BxgpOktcbX6A$XqOWF4mNpEn++ZgyCQs5fzeqoCcAIG/OxC2ZRg4Iqos5qcjlaTa7HQ409aAT+PtLp5TRA8mX/QL2jDQZqACF5w",
		algorithm:      "pbkdf2-sha256",
		rehash:         true,
	},
	{
		name:           "pbkdf2-sha256 256-bit key",
		secretData:     `{"value":"XqOWF4mNpEn++ZgyCQs5fzeqoCcAIG/OxC2ZRg4Iqos=","salt":"mx88Kn1OX2BxgpOktcbX6A==","additionalParameters":{}}`,
		credentialData: `{"hashIterations":27500,"algorithm":"pbkdf2-sha256","additionalParameters":{}}`,
		encoded:        "$pbkdf2-sha256$i=27500$mx88Kn1OX2BxgpOktcbX6A$XqOWF4mNpEn++ZgyCQs5fzeqoCcAIG/OxC2ZRg4Iqos",
		algorithm:      "pbkdf2-sha256",
		rehash:         true,
	},
	{
		name:           "pbkdf2-sha512",
		secretData:     `{"value":"TCaEp2PbQY/vm+tCoWR8zj98/wiIvOe1HlXSuExDVUQK7HTqZ+BNDXtljdc87NsootrQ769rImETSNPZdAvd6g==","salt":"mx88Kn1OX2BxgpOktcbX6A==","additionalParameters":{}}`,
		credentialData: `{"hashIterations":30000,"algorithm":"pbkdf2-sha512","additionalParameters":{}}`,
		encoded:        "$pbkdf2-sha512$i=30000$mx88Kn1OX2BxgpOktcbX6A$TCaEp2PbQY/vm+tCoWR8zj98/wiIvOe1HlXSuExDVUQK7HTqZ+BNDXtljdc87NsootrQ769rImETSNPZdAvd6g",
		algorithm:      "pbkdf2-sha512",
		rehash:         true,
	},
	{
		name:           "pbkdf2 (HMAC-SHA1)",
		secretData:     `{"value":"t1cIk3qHwXugmdNoFMk4Veu2y5w=","salt":"mx88Kn1OX2BxgpOktcbX6A==","additionalParameters":{}}`,
		credentialData: `{"hashIterations":27500,"algorithm":"pbkdf2","additionalParameters":{}}`,
		encoded:        "$pbkdf2-sha1$i=27500$mx88Kn1OX2BxgpOktcbX6A$t1cIk3qHwXugmdNoFMk4Veu2y5w",
		algorithm:      "pbkdf2",
		rehash:         true,
	},
	{
		name:           "argon2id at Keycloak's defaults",
		secretData:     `{"value":"e1N19spcSfMgJnq/ghhqw8GBpcqHH1iMjN4EPZvWDGU=","salt":"Z2F0ZWhvdXNlLXNhbHQxNg==","additionalParameters":{}}`,
		credentialData: `{"hashIterations":5,"algorithm":"argon2","additionalParameters":{"hashLength":["32"],"memory":["7168"],"type":["id"],"version":["1.3"],"parallelism":["1"]}}`,
		encoded:        "$argon2id$v=19$m=7168,t=5,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$e1N19spcSfMgJnq/ghhqw8GBpcqHH1iMjN4EPZvWDGU",
		algorithm:      "argon2",
		rehash:         false,
	},
	{
		name:           "argon2i",
		secretData:     `{"value":"8IFu5DlpnYFwR3Ll1vpLwvoFgjVbrserp92SE1/7Pyc=","salt":"Z2F0ZWhvdXNlLXNhbHQxNg==","additionalParameters":{}}`,
		credentialData: `{"hashIterations":3,"algorithm":"argon2","additionalParameters":{"hashLength":["32"],"memory":["1024"],"type":["i"],"version":["1.3"],"parallelism":["2"]}}`,
		encoded:        "$argon2i$v=19$m=1024,t=3,p=2$Z2F0ZWhvdXNlLXNhbHQxNg$8IFu5DlpnYFwR3Ll1vpLwvoFgjVbrserp92SE1/7Pyc",
		algorithm:      "argon2",
		rehash:         true,
	},
	{
		name:           "argon2d",
		secretData:     `{"value":"fnCWccjLbfJsufRQgHi1XdeBwiQIZM/4cx2oyMO3mSc=","salt":"Z2F0ZWhvdXNlLXNhbHQxNg==","additionalParameters":{}}`,
		credentialData: `{"hashIterations":2,"algorithm":"argon2","additionalParameters":{"hashLength":["32"],"memory":["1000"],"type":["d"],"version":["1.3"],"parallelism":["3"]}}`,
		encoded:        "$argon2d$v=19$m=1000,t=2,p=3$Z2F0ZWhvdXNlLXNhbHQxNg$fnCWccjLbfJsufRQgHi1XdeBwiQIZM/4cx2oyMO3mSc",
		algorithm:      "argon2",
		rehash:         true,
	},
	{
		name:           "argon2id version 1.0",
		secretData:     `{"value":"t42dU+0CZeVL1DLzog47rYAhXimtxVOM0XT0DIqPE1M=","salt":"Z2F0ZWhvdXNlLXNhbHQxNg==","additionalParameters":{}}`,
		credentialData: `{"hashIterations":3,"algorithm":"argon2","additionalParameters":{"hashLength":["32"],"memory":["256"],"type":["id"],"version":["1.0"],"parallelism":["1"]}}`,
		encoded:        "$argon2id$v=16$m=256,t=3,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$t42dU+0CZeVL1DLzog47rYAhXimtxVOM0XT0DIqPE1M",
		algorithm:      "argon2",
		rehash:         true,
	},
}

func TestFromKeycloakKnownAnswers(t *testing.T) {
	h := NewHasher(DefaultParams())
	for _, v := range keycloakVectors {
		t.Run(v.name, func(t *testing.T) {
			enc, err := FromKeycloak(v.secretData, v.credentialData)
			if err != nil {
				t.Fatalf("FromKeycloak: %v", err)
			}
			if enc != v.encoded {
				t.Fatalf("FromKeycloak = %q, want %q", enc, v.encoded)
			}
			if got := Algorithm(enc); got != v.algorithm {
				t.Errorf("Algorithm = %q, want %q", got, v.algorithm)
			}
			ok, rehash := h.Verify(enc, knownPassword)
			if !ok {
				t.Fatal("Verify rejected the right password")
			}
			if rehash != v.rehash {
				t.Errorf("rehash = %v, want %v", rehash, v.rehash)
			}
			if ok, rehash := h.Verify(enc, wrongPassword); ok || rehash {
				t.Errorf("Verify(wrong password) = %v, %v; want false, false", ok, rehash)
			}
			if ok, _ := h.Verify(enc, ""); ok {
				t.Error("Verify accepted the empty password")
			}

			// Export gives back Keycloak's own strings, byte for byte.
			sd, cd, err := ToKeycloak(enc)
			if err != nil {
				t.Fatalf("ToKeycloak: %v", err)
			}
			if sd != v.secretData {
				t.Errorf("ToKeycloak secretData = %s, want %s", sd, v.secretData)
			}
			if cd != v.credentialData {
				t.Errorf("ToKeycloak credentialData = %s, want %s", cd, v.credentialData)
			}
		})
	}
}

func TestKeycloakRoundTripOfNewHash(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Iterations: 1, Parallelism: 2, KeyLen: 20, SaltLen: 12})
	enc, err := h.Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	sd, cd, err := ToKeycloak(enc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type":["id"]`, `"version":["1.3"]`, `"hashLength":["20"]`, `"memory":["64"]`, `"parallelism":["2"]`, `"hashIterations":1`, `"algorithm":"argon2"`} {
		if !strings.Contains(cd, want) {
			t.Errorf("credentialData %s lacks %s", cd, want)
		}
	}
	back, err := FromKeycloak(sd, cd)
	if err != nil {
		t.Fatal(err)
	}
	if back != enc {
		t.Fatalf("FromKeycloak(ToKeycloak(x)) = %q, want %q", back, enc)
	}
}

// Hand-written import files (and older tools) drop additionalParameters,
// write bare strings instead of arrays, or omit base64 padding; Keycloak's
// own parser copes with these, so gatehouse does too.
func TestFromKeycloakLenientInput(t *testing.T) {
	cases := []struct{ sd, cd, want string }{
		{
			`{"value":"XqOWF4mNpEn++ZgyCQs5fzeqoCcAIG/OxC2ZRg4Iqos","salt":"mx88Kn1OX2BxgpOktcbX6A"}`,
			`{"algorithm":"pbkdf2-sha256","hashIterations":27500}`,
			"$pbkdf2-sha256$i=27500$mx88Kn1OX2BxgpOktcbX6A$XqOWF4mNpEn++ZgyCQs5fzeqoCcAIG/OxC2ZRg4Iqos",
		},
		{
			`{"value":"e1N19spcSfMgJnq/ghhqw8GBpcqHH1iMjN4EPZvWDGU=","salt":"Z2F0ZWhvdXNlLXNhbHQxNg=="}`,
			`{"hashIterations":5,"algorithm":"argon2","additionalParameters":{"hashLength":"32","memory":7168,"type":"id","version":["1.3"],"parallelism":["1"]}}`,
			"$argon2id$v=19$m=7168,t=5,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$e1N19spcSfMgJnq/ghhqw8GBpcqHH1iMjN4EPZvWDGU",
		},
	}
	for _, c := range cases {
		got, err := FromKeycloak(c.sd, c.cd)
		if err != nil {
			t.Errorf("FromKeycloak(%s, %s): %v", c.sd, c.cd, err)
			continue
		}
		if got != c.want {
			t.Errorf("FromKeycloak = %q, want %q", got, c.want)
		}
	}
}

func TestFromKeycloakErrors(t *testing.T) {
	const goodSD = `{"value":"e1N19spcSfMgJnq/ghhqw8GBpcqHH1iMjN4EPZvWDGU=","salt":"Z2F0ZWhvdXNlLXNhbHQxNg==","additionalParameters":{}}`
	argon := func(params string) string {
		return `{"hashIterations":5,"algorithm":"argon2","additionalParameters":{` + params + `}}`
	}
	cases := []struct {
		name, sd, cd, wantErr string
	}{
		{"secretData not JSON", `{`, `{"hashIterations":1,"algorithm":"pbkdf2"}`, "secretData"},
		{"credentialData not JSON", goodSD, `nope`, "credentialData"},
		{"unknown algorithm", goodSD, `{"hashIterations":10,"algorithm":"bcrypt"}`, `"bcrypt" is not supported`},
		{"no algorithm", goodSD, `{"hashIterations":10}`, "no algorithm"},
		{"zero iterations", goodSD, `{"hashIterations":0,"algorithm":"pbkdf2-sha256"}`, "hashIterations"},
		{"too many iterations", goodSD, `{"hashIterations":99999999,"algorithm":"pbkdf2-sha256"}`, "iterations"},
		{"bad base64 value", `{"value":"!!!","salt":""}`, `{"hashIterations":1,"algorithm":"pbkdf2"}`, "value"},
		{"bad base64 salt", `{"value":"AAAAAAAA","salt":"*"}`, `{"hashIterations":1,"algorithm":"pbkdf2"}`, "salt"},
		{"empty value", `{"value":"","salt":"AAAA"}`, `{"hashIterations":1,"algorithm":"pbkdf2"}`, "hash length"},
		{"argon2 missing type", goodSD, argon(`"hashLength":["32"],"memory":["7168"],"version":["1.3"],"parallelism":["1"]`), "type"},
		{"argon2 bad type", goodSD, argon(`"hashLength":["32"],"memory":["7168"],"type":["x"],"version":["1.3"],"parallelism":["1"]`), `type "x"`},
		{"argon2 bad version", goodSD, argon(`"hashLength":["32"],"memory":["7168"],"type":["id"],"version":["2.0"],"parallelism":["1"]`), `version "2.0"`},
		{"argon2 hashLength mismatch", goodSD, argon(`"hashLength":["64"],"memory":["7168"],"type":["id"],"version":["1.3"],"parallelism":["1"]`), "hashLength 64"},
		{"argon2 memory not a number", goodSD, argon(`"hashLength":["32"],"memory":["lots"],"type":["id"],"version":["1.3"],"parallelism":["1"]`), "memory"},
		{"argon2 memory too large", goodSD, argon(`"hashLength":["32"],"memory":["4000000"],"type":["id"],"version":["1.3"],"parallelism":["1"]`), "memory"},
		{"argon2 parallelism zero", goodSD, argon(`"hashLength":["32"],"memory":["7168"],"type":["id"],"version":["1.3"],"parallelism":["0"]`), "parallelism"},
		{"argon2 parameter bad shape", goodSD, argon(`"hashLength":{"a":1}`), "additional parameter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromKeycloak(c.sd, c.cd)
			if err == nil {
				t.Fatalf("FromKeycloak = %q, want an error", got)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("error %q does not mention %q", err, c.wantErr)
			}
		})
	}
}

func TestToKeycloakRejectsMalformed(t *testing.T) {
	for _, enc := range []string{"", "plain", "$argon2id$v=19$m=7168,t=5,p=1$$", "$bcrypt$..."} {
		if _, _, err := ToKeycloak(enc); err == nil {
			t.Errorf("ToKeycloak(%q) succeeded", enc)
		}
	}
}

// FuzzFromKeycloak: arbitrary import files never panic, and whatever
// converts survives the export round trip unchanged.
func FuzzFromKeycloak(f *testing.F) {
	for _, v := range keycloakVectors {
		f.Add(v.secretData, v.credentialData)
	}
	f.Add(`{"value":"AAAA","salt":"AAAA"}`, `{"hashIterations":1,"algorithm":"argon2","additionalParameters":{"hashLength":"3","memory":"8","type":"d","version":"1.0","parallelism":"1"}}`)
	f.Add(`{}`, `{}`)
	f.Add(`null`, `[]`)
	f.Fuzz(func(t *testing.T, sd, cd string) {
		enc, err := FromKeycloak(sd, cd)
		if err != nil {
			return
		}
		if _, err := parse(enc); err != nil {
			t.Fatalf("FromKeycloak produced unparsable %q: %v", enc, err)
		}
		sd2, cd2, err := ToKeycloak(enc)
		if err != nil {
			t.Fatalf("ToKeycloak(%q): %v", enc, err)
		}
		back, err := FromKeycloak(sd2, cd2)
		if err != nil || back != enc {
			t.Fatalf("round trip of %q gave %q, %v", enc, back, err)
		}
	})
}
