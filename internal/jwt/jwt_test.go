package jwt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type keyPair struct {
	alg  string
	priv any
	pub  any
}

func genKeys(t testing.TB) []keyPair {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	epub, edk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hk := make([]byte, 32)
	rand.Read(hk)
	return []keyPair{
		{RS256, rk, &rk.PublicKey},
		{PS256, rk, &rk.PublicKey},
		{ES256, ek, &ek.PublicKey},
		{EdDSA, edk, epub},
		{HS256, hk, hk},
	}
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestRoundTripEveryAlg(t *testing.T) {
	keys := genKeys(t)
	payload := []byte(`{"sub":"alice","exp":2000000000}`)
	for i, kp := range keys {
		t.Run(kp.alg, func(t *testing.T) {
			s, err := NewSigner(kp.alg, "kid-"+kp.alg, kp.priv)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := Sign(s, "JWT", payload)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(tok)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Header != (Header{Alg: kp.alg, Kid: "kid-" + kp.alg, Typ: "JWT"}) {
				t.Fatalf("header = %+v", p.Header)
			}
			if !bytes.Equal(p.Payload, payload) {
				t.Fatalf("payload = %q", p.Payload)
			}
			if err := Verify(p.Header.Alg, kp.pub, p.SigningInput, p.Signature); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if kp.alg == ES256 && len(p.Signature) != 64 {
				t.Fatalf("ES256 signature is %d bytes, want raw r||s of 64", len(p.Signature))
			}

			checkHeaderAsJSON(t, tok, p.Header)

			// Tampered payload.
			parts := strings.Split(tok, ".")
			forged := parts[0] + "." + enc(`{"sub":"admin","exp":2000000000}`)
			if err := Verify(kp.alg, kp.pub, []byte(forged), p.Signature); !errors.Is(err, ErrSignature) {
				t.Fatalf("tampered payload: err = %v", err)
			}
			// Flipped signature bit.
			bad := append([]byte(nil), p.Signature...)
			bad[len(bad)/2] ^= 1
			if err := Verify(kp.alg, kp.pub, p.SigningInput, bad); !errors.Is(err, ErrSignature) {
				t.Fatalf("flipped signature: err = %v", err)
			}
			// Truncated signature.
			if err := Verify(kp.alg, kp.pub, p.SigningInput, p.Signature[:len(p.Signature)-1]); !errors.Is(err, ErrSignature) {
				t.Fatalf("truncated signature: err = %v", err)
			}
			// Wrong key of the right type.
			other := genOther(t, kp.alg)
			if err := Verify(kp.alg, other, p.SigningInput, p.Signature); err == nil {
				t.Fatal("verified with the wrong key")
			}
			// A key of another alg's type.
			wrongType := keys[(i+2)%len(keys)].pub
			if err := Verify(kp.alg, wrongType, p.SigningInput, p.Signature); !errors.Is(err, ErrKeyType) {
				t.Fatalf("key of wrong type: err = %v", err)
			}
		})
	}
}

func genOther(t *testing.T, alg string) any {
	t.Helper()
	switch alg {
	case RS256, PS256:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return &k.PublicKey
	case ES256:
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return &k.PublicKey
	case EdDSA:
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		return pub
	default:
		k := make([]byte, 32)
		rand.Read(k)
		return k
	}
}

func TestSignHeaderPerTyp(t *testing.T) {
	k := make([]byte, 32)
	rand.Read(k)
	s, err := NewSigner(HS256, "h1", k)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"JWT", "", "at+jwt", "JWT"} {
		tok, err := Sign(s, typ, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		var m map[string]any
		if err := json.Unmarshal(hdr, &m); err != nil {
			t.Fatal(err)
		}
		_, hasTyp := m["typ"]
		if (typ == "") == hasTyp || (typ != "" && m["typ"] != typ) || m["alg"] != HS256 || m["kid"] != "h1" {
			t.Fatalf("typ %q: header %s", typ, hdr)
		}
	}
	// The caller's slice is copied: changing it does not change the key.
	tok, _ := Sign(s, "", []byte(`{}`))
	k[0] ^= 0xff
	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	k[0] ^= 0xff
	if err := Verify(HS256, k, p.SigningInput, p.Signature); err != nil {
		t.Fatal(err)
	}
}

// foreignSigner is not from NewSigner, so Sign cannot use a cached header.
type foreignSigner struct{ Signer }

func TestSignWithForeignSigner(t *testing.T) {
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := NewSigner(EdDSA, "e", edk)
	tok, err := Sign(foreignSigner{s}, "JWT", []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(EdDSA, edk.Public(), p.SigningInput, p.Signature); err != nil {
		t.Fatal(err)
	}
}

func TestNewSignerRejectsMismatch(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	epub, edk, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		alg  string
		key  any
		want error
	}{
		{RS256, ek, ErrKeyType},
		{RS256, &rk.PublicKey, ErrKeyType},
		{RS256, weak, ErrWeakKey},
		{PS256, edk, ErrKeyType},
		{ES256, rk, ErrKeyType},
		{ES256, e384, ErrKeyType},
		{EdDSA, epub, ErrKeyType},
		{EdDSA, []byte(edk), ErrKeyType},
		{HS256, make([]byte, 31), ErrWeakKey},
		{HS256, &rk.PublicKey, ErrKeyType},
		{HS256, "a string secret of more than thirty-two bytes", ErrKeyType},
		{"none", nil, ErrUnsupportedAlg},
		{"RS512", rk, ErrUnsupportedAlg},
		{RS256, (*rsa.PrivateKey)(nil), ErrKeyType},
	}
	for _, c := range cases {
		if _, err := NewSigner(c.alg, "k", c.key); !errors.Is(err, c.want) {
			t.Errorf("NewSigner(%s, %T) = %v, want %v", c.alg, c.key, err, c.want)
		}
	}
}

// TestKeyConfusion is the classic attack: the attacker takes the server's
// RSA public key, uses its bytes as an HMAC secret and sends alg HS256.
func TestKeyConfusion(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	forger, err := NewSigner(HS256, "rsa-kid", der)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := Sign(forger, "JWT", []byte(`{"sub":"admin"}`))
	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	// The verifier holds the RSA public key; whatever alg the token names,
	// an RSA key never verifies an HMAC.
	if err := Verify(p.Header.Alg, &rk.PublicKey, p.SigningInput, p.Signature); !errors.Is(err, ErrKeyType) {
		t.Fatalf("HS256 with RSA public key: %v", err)
	}
	if err := Verify(RS256, &rk.PublicKey, p.SigningInput, p.Signature); !errors.Is(err, ErrSignature) {
		t.Fatalf("HMAC signature checked as RS256: %v", err)
	}
	// Nor an EC key or an Ed25519 public key (which is a []byte underneath).
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	epub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, k := range []any{ek.Public(), epub, rk, ek} {
		if err := Verify(HS256, k, p.SigningInput, p.Signature); !errors.Is(err, ErrKeyType) {
			t.Fatalf("HS256 with %T: %v", k, err)
		}
	}
	for _, alg := range []string{"none", "None", "", "RS512", "HS512"} {
		if err := Verify(alg, der, p.SigningInput, p.Signature); !errors.Is(err, ErrUnsupportedAlg) {
			t.Fatalf("Verify(%q) = %v", alg, err)
		}
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	if err := Verify(RS256, &weak.PublicKey, p.SigningInput, p.Signature); !errors.Is(err, ErrWeakKey) {
		t.Fatalf("1024-bit RSA: %v", err)
	}
	if err := Verify(HS256, der[:16], p.SigningInput, p.Signature); !errors.Is(err, ErrWeakKey) {
		t.Fatalf("short HMAC key: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	rs := enc(`{"alg":"RS256","kid":"k"}`)
	pay := enc(`{"sub":"x"}`)
	sig := enc("signature-bytes")
	cases := map[string]struct {
		tok  string
		want error
	}{
		"alg none":          {enc(`{"alg":"none"}`) + "." + pay + "." + sig, ErrUnsupportedAlg},
		"alg none no sig":   {enc(`{"alg":"none"}`) + "." + pay + ".", ErrMalformed},
		"alg NoNe":          {enc(`{"alg":"NoNe"}`) + "." + pay + "." + sig, ErrUnsupportedAlg},
		"alg empty":         {enc(`{"alg":""}`) + "." + pay + "." + sig, ErrUnsupportedAlg},
		"alg missing":       {enc(`{"kid":"k"}`) + "." + pay + "." + sig, ErrMalformed},
		"alg number":        {enc(`{"alg":256}`) + "." + pay + "." + sig, ErrMalformed},
		"alg null":          {enc(`{"alg":null}`) + "." + pay + "." + sig, ErrMalformed},
		"kid object":        {enc(`{"alg":"RS256","kid":{}}`) + "." + pay + "." + sig, ErrMalformed},
		"duplicate alg":     {enc(`{"alg":"RS256","alg":"none"}`) + "." + pay + "." + sig, ErrMalformed},
		"crit":              {enc(`{"alg":"RS256","crit":["exp"]}`) + "." + pay + "." + sig, ErrForbiddenHeader},
		"jku":               {enc(`{"alg":"RS256","jku":"https://evil/jwks"}`) + "." + pay + "." + sig, ErrForbiddenHeader},
		"jwk":               {enc(`{"alg":"RS256","jwk":{"kty":"oct"}}`) + "." + pay + "." + sig, ErrForbiddenHeader},
		"x5u":               {enc(`{"alg":"RS256","x5u":"https://evil/cert"}`) + "." + pay + "." + sig, ErrForbiddenHeader},
		"header array":      {enc(`["alg","RS256"]`) + "." + pay + "." + sig, ErrMalformed},
		"header string":     {enc(`"RS256"`) + "." + pay + "." + sig, ErrMalformed},
		"header trailing":   {enc(`{"alg":"RS256"}{}`) + "." + pay + "." + sig, ErrMalformed},
		"header truncated":  {enc(`{"alg":"RS256"`) + "." + pay + "." + sig, ErrMalformed},
		"header not json":   {enc(`alg=RS256`) + "." + pay + "." + sig, ErrMalformed},
		"many members":      {enc(`{"alg":"RS256"`+manyMembers(40)+`}`) + "." + pay + "." + sig, ErrMalformed},
		"two parts":         {rs + "." + pay, ErrMalformed},
		"one part":          {rs, ErrMalformed},
		"four parts":        {rs + "." + pay + "." + sig + "." + sig, ErrMalformed},
		"five parts (JWE)":  {rs + "." + pay + "." + sig + "." + sig + "." + sig, ErrMalformed},
		"empty":             {"", ErrMalformed},
		"dots only":         {"..", ErrMalformed},
		"empty header":      {"." + pay + "." + sig, ErrMalformed},
		"empty signature":   {rs + "." + pay + ".", ErrMalformed},
		"padding":           {rs + "." + pay + "." + enc("sig") + "=", ErrMalformed},
		"std alphabet":      {rs + "." + pay + "." + "ab+/", ErrMalformed},
		"newline":           {rs + "." + pay + "\n." + sig, ErrMalformed},
		"space":             {rs + " ." + pay + "." + sig, ErrMalformed},
		"bad base64 length": {rs + "." + pay + "." + "a", ErrMalformed},
		"non-canonical b64": {rs + "." + pay + "." + "ab", ErrMalformed},
		"bad header b64":    {"e" + "." + pay + "." + sig, ErrMalformed},
		"bad payload b64":   {rs + "." + "x" + "." + sig, ErrMalformed},
		"huge":              {rs + "." + strings.Repeat("A", MaxTokenSize) + "." + sig, ErrTooLarge},
		"truncated":         {(rs + "." + pay + "." + sig)[:len(rs)+3], ErrMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Parse(c.tok)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if p != nil {
				t.Fatal("non-nil result with error")
			}
			// Errors never echo the token.
			for _, part := range strings.Split(c.tok, ".") {
				if len(part) > 8 && strings.Contains(err.Error(), part) {
					t.Fatalf("error %q echoes token", err)
				}
			}
		})
	}
}

func TestParseHeaderScanner(t *testing.T) {
	cases := map[string]Header{
		`{"x":{"a":["}",{"b":"\\\"]"}]},"alg":"ES256","kid":"\u006bid","typ" : "JWT" }`: {Alg: "ES256", Kid: "kid", Typ: "JWT"},
		"\t{ \"alg\" :\r\n\"RS256\" , \"n\":-1.5e3,\"t\":true,\"z\":null}\n":            {Alg: "RS256"},
		`{"kid":"a\/b","alg":"EdDSA"}`:                                                  {Alg: "EdDSA", Kid: "a/b"},
	}
	for hdr, want := range cases {
		p, err := Parse(enc(hdr) + ".e30.AA")
		if err != nil {
			t.Fatalf("%s: %v", hdr, err)
		}
		if p.Header != want {
			t.Fatalf("%s: %+v", hdr, p.Header)
		}
	}
	for _, hdr := range []string{`{"alg":"RS256","ALG":"none","alg":"x"}`, `{"alg":"RS256","kid":"\xff"}`, "{\"alg\":\"RS256\",\"kid\":\"\xff\"}", `{"alg":"\u006eone"}`, `{"a\u006cg":"RS256","alg":"ES256"}`} {
		if _, err := Parse(enc(hdr) + ".e30.AA"); err == nil {
			t.Fatalf("accepted %s", hdr)
		}
	}
}

func TestParseAcceptsUnknownHeaders(t *testing.T) {
	tok := enc(`{"alg":"RS256","x5t":"abc","cty":"JWT","nested":{"a":[1,2]}}`) + ".." + enc("s")
	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Alg != RS256 || len(p.Payload) != 0 || string(p.Signature) != "s" {
		t.Fatalf("%+v", p)
	}
	if string(p.SigningInput) != tok[:strings.LastIndexByte(tok, '.')] {
		t.Fatalf("signing input %q", p.SigningInput)
	}
}

// RFC 7515 Appendix A.1: HS256 with a header containing CR LF whitespace.
func TestRFC7515A1(t *testing.T) {
	const tok = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9" +
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" +
		".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	key, _ := base64.RawURLEncoding.DecodeString("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Alg != HS256 || p.Header.Typ != "JWT" {
		t.Fatalf("%+v", p.Header)
	}
	if err := Verify(p.Header.Alg, key, p.SigningInput, p.Signature); err != nil {
		t.Fatal(err)
	}
}

// RFC 7515 Appendix A.3: ES256, the signature in JWS (r||s) form.
func TestRFC7515A3(t *testing.T) {
	const tok = "eyJhbGciOiJFUzI1NiJ9" +
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" +
		".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
	jwk := JWK{Kty: "EC", Crv: "P-256",
		X: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
		Y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
	pub, err := jwk.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Alg != ES256 {
		t.Fatalf("%+v", p.Header)
	}
	var claims struct {
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(p.Payload, &claims); err != nil || claims.Iss != "joe" || claims.Exp != 1300819380 {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	if err := Verify(ES256, pub, p.SigningInput, p.Signature); err != nil {
		t.Fatal(err)
	}
	// The same signature in ASN.1 form is not a JWS signature.
	if err := Verify(ES256, pub, p.SigningInput, append([]byte{0x30, 0x44}, p.Signature...)); !errors.Is(err, ErrSignature) {
		t.Fatal(err)
	}
	// And the known answer round-trips through PublicJWK.
	back, err := PublicJWK("", ES256, pub)
	if err != nil || back.X != jwk.X || back.Y != jwk.Y || back.Crv != "P-256" || back.Kty != "EC" {
		t.Fatalf("PublicJWK = %+v, %v", back, err)
	}
}

func TestJWKRoundTrip(t *testing.T) {
	for _, kp := range genKeys(t) {
		if kp.alg == HS256 || kp.alg == PS256 {
			continue
		}
		pub := kp.pub.(crypto.PublicKey)
		j, err := PublicJWK("kid1", kp.alg, pub)
		if err != nil {
			t.Fatal(err)
		}
		if j.Use != "sig" || j.Alg != kp.alg || j.Kid != "kid1" {
			t.Fatalf("%+v", j)
		}
		doc, _ := json.Marshal(JWKS{Keys: []JWK{j}})
		set, err := ParseJWKS(doc)
		if err != nil || len(set.Keys) != 1 {
			t.Fatalf("ParseJWKS: %v %+v", err, set)
		}
		back, err := set.Keys[0].PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if !back.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Fatalf("%s: key changed in round trip", kp.alg)
		}
	}
	if _, err := PublicJWK("k", HS256, []byte("0123456789abcdef0123456789abcdef")); !errors.Is(err, ErrBadJWK) {
		t.Fatalf("HMAC key published: %v", err)
	}
}

func TestRSAJWKKnownAnswer(t *testing.T) {
	// e = 65537 encodes as AQAB in every JWKS.
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	j, err := PublicJWK("k", RS256, &rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if j.Kty != "RSA" || j.E != "AQAB" || len(j.N) != 342 {
		t.Fatalf("%+v", j)
	}
}

func TestParseJWKS(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rj, _ := PublicJWK("r", RS256, &rk.PublicKey)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	wj, _ := PublicJWK("w", RS256, &weak.PublicKey)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ej, _ := PublicJWK("e", ES256, &ek.PublicKey)
	offCurve := ej
	offCurve.Y = ej.X
	mustJSON := func(v any) string { b, _ := json.Marshal(v); return string(b) }

	set, err := ParseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"},` + mustJSON(rj) +
		`,{"kty":"EC","crv":"P-384","x":"AA","y":"AA"},{"kty":"OKP","crv":"X25519","x":"AA"},{"kty":"future"},` + mustJSON(ej) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0].Kid != "r" || set.Keys[1].Kid != "e" {
		t.Fatalf("%+v", set)
	}
	bad := map[string]string{
		"not json":    `{"keys":`,
		"no keys":     `{}`,
		"keys null":   `{"keys":null}`,
		"keys object": `{"keys":{}}`,
		"weak rsa":    `{"keys":[` + mustJSON(wj) + `]}`,
		"off curve":   `{"keys":[` + mustJSON(offCurve) + `]}`,
		"rsa no n":    `{"keys":[{"kty":"RSA","e":"AQAB"}]}`,
		"rsa e even":  `{"keys":[{"kty":"RSA","n":"` + rj.N + `","e":"AQAA"}]}`,
		"rsa e huge":  `{"keys":[{"kty":"RSA","n":"` + rj.N + `","e":"AQAAAAAB"}]}`,
		"okp short":   `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`,
		"key string":  `{"keys":["x"]}`,
	}
	for name, doc := range bad {
		if _, err := ParseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	k := make([]byte, 32)
	s, _ := NewSigner(HS256, "kid", k)
	good, _ := Sign(s, "JWT", []byte(`{"sub":"a"}`))
	f.Add(good)
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UifQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6")
	f.Add(enc(`{"alg":"none"}`) + "." + enc(`{}`) + ".")
	f.Add(enc(`{"alg":"RS256","crit":["b64"],"b64":false}`) + ".x.y")
	f.Add(enc(`{"alg":"RS256","alg":"HS256"}`) + ".e30.AA")
	f.Add("..")
	f.Add("a.b.c.d")
	f.Add(enc(`{"alg":"RS256","kid":"\u0000\ud800"}`) + ".e30.AA")
	f.Add(enc(`{"x":{"a":["}",{"b":"\\\"]"}]},"alg":"ES256","kid":"\u006b","typ" : "JWT" }`) + ".e30.AA")
	f.Add(enc(` {"alg":"RS256","n":-1.5e3,"t":true,"f":false,"z":null} `) + ".e30.AA")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := Parse(tok)
		if err != nil {
			if p != nil {
				t.Fatal("result with error")
			}
			return
		}
		if !strings.HasPrefix(tok, string(p.SigningInput)+".") {
			t.Fatal("signing input is not a prefix of the token")
		}
		if p.Header.Alg == "" || strings.EqualFold(p.Header.Alg, "none") {
			t.Fatal("accepted alg none")
		}
		if len(p.Signature) == 0 {
			t.Fatal("accepted empty signature")
		}
		checkHeaderAsJSON(t, tok, p.Header)
		parts := strings.Split(tok, ".")
		if len(parts) != 3 ||
			base64.RawURLEncoding.EncodeToString(p.Payload) != parts[1] ||
			base64.RawURLEncoding.EncodeToString(p.Signature) != parts[2] {
			t.Fatal("decoding is not canonical")
		}
		// A parsed token never verifies under an HMAC key it was not made with.
		mac := hmac.New(sha256.New, k)
		mac.Write(p.SigningInput)
		want := mac.Sum(nil)
		if err := Verify(HS256, k, p.SigningInput, p.Signature); (err == nil) != bytes.Equal(want, p.Signature) {
			t.Fatal("HMAC verification disagrees with crypto/hmac")
		}
	})
}

func benchSigner(b *testing.B, alg string, key any) {
	s, err := NewSigner(alg, "0123456789abcdef0123456789abcdef", key)
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"exp":1700000300,"iat":1700000000,"jti":"4f1c2d3e-5a6b-7c8d-9e0f-112233445566","iss":"http://localhost:8080/realms/demo","sub":"6f2a3c1e-0000-4000-8000-000000000001","typ":"Bearer","azp":"svc","scope":"profile email"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(s, "JWT", payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRS256(b *testing.B) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	benchSigner(b, RS256, k)
}

func BenchmarkSignES256(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	benchSigner(b, ES256, k)
}

func BenchmarkSignEdDSA(b *testing.B) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	benchSigner(b, EdDSA, k)
}

func BenchmarkSignHS256(b *testing.B) {
	benchSigner(b, HS256, make([]byte, 32))
}

func benchToken(b *testing.B) (string, *rsa.PublicKey) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	s, _ := NewSigner(RS256, "0123456789abcdef0123456789abcdef", k)
	tok, err := Sign(s, "JWT", []byte(`{"exp":1700000300,"iat":1700000000,"jti":"4f1c2d3e-5a6b-7c8d-9e0f-112233445566","iss":"http://localhost:8080/realms/demo","sub":"6f2a3c1e-0000-4000-8000-000000000001","typ":"Bearer","azp":"svc","scope":"profile email"}`))
	if err != nil {
		b.Fatal(err)
	}
	return tok, &k.PublicKey
}

func BenchmarkVerifyRS256(b *testing.B) {
	tok, pub := benchToken(b)
	p, err := Parse(tok)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(RS256, pub, p.SigningInput, p.Signature); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	tok, _ := benchToken(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseJWKS(f *testing.F) {
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ej, _ := PublicJWK("e", ES256, &ek.PublicKey)
	epub, _, _ := ed25519.GenerateKey(rand.Reader)
	oj, _ := PublicJWK("o", EdDSA, epub)
	doc, _ := json.Marshal(JWKS{Keys: []JWK{ej, oj, {Kty: "oct"}}})
	f.Add(doc)
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range set.Keys {
			if _, err := k.PublicKey(); err != nil {
				t.Fatalf("returned a key that does not parse: %v", err)
			}
		}
	})
}

func TestECDSASignatureForms(t *testing.T) {
	for _, raw := range [][]byte{
		append(bytes.Repeat([]byte{0}, 31), append([]byte{1}, bytes.Repeat([]byte{0xff}, 32)...)...),
		append(bytes.Repeat([]byte{0x80}, 32), append([]byte{0, 0, 0x7f}, bytes.Repeat([]byte{1}, 29)...)...),
	} {
		back, err := derToRaw(rawToDER(raw))
		if err != nil || !bytes.Equal(back, raw) {
			t.Fatalf("round trip of %x: %x, %v", raw, back, err)
		}
	}
	for _, der := range [][]byte{nil, {0x30, 0}, {0x31, 6, 2, 1, 1, 2, 1, 1}, {0x30, 6, 2, 1, 1, 2, 2, 1}, {0x30, 7, 2, 1, 1, 2, 1, 1, 0},
		append([]byte{0x30, 37, 2, 33}, bytes.Repeat([]byte{1}, 35)...)} {
		if _, err := derToRaw(der); err == nil {
			t.Fatalf("accepted %x", der)
		}
	}
	// Many real signatures: both paddings of r and s occur.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := NewSigner(ES256, "", k)
	for i := range 200 {
		in := []byte{byte(i)}
		sig, err := s.Sign(in)
		if err != nil || len(sig) != 64 {
			t.Fatal(err)
		}
		if err := Verify(ES256, &k.PublicKey, in, sig); err != nil {
			t.Fatal(err)
		}
	}
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`,"p` + string(rune('A'+i%26)) + string(rune('a'+i/26)) + `":0`)
	}
	return b.String()
}

func TestHeaderMemberLimit(t *testing.T) {
	ok := enc(`{"alg":"RS256"`+manyMembers(maxHeaderParams-1)+`}`) + ".e30.AA"
	if _, err := Parse(ok); err != nil {
		t.Fatalf("%d members: %v", maxHeaderParams, err)
	}
	_, err := Parse(enc(`{"alg":"RS256"`+manyMembers(maxHeaderParams)+`}`) + ".e30.AA")
	if err == nil || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("%d members: %v", maxHeaderParams+1, err)
	}
}

// checkHeaderAsJSON checks that the header Parse accepted in tok means the
// same to encoding/json as to Parse (h), and holds none of the parameters
// Parse must refuse.
func checkHeaderAsJSON(t *testing.T, tok string, h Header) {
	t.Helper()
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var m map[string]any
	if err := json.Unmarshal(hdr, &m); err != nil {
		t.Fatalf("Parse accepted a header encoding/json rejects: %v", err)
	}
	for name, got := range map[string]string{"alg": h.Alg, "kid": h.Kid, "typ": h.Typ} {
		if v, ok := m[name]; (ok && v != got) || (!ok && got != "") {
			t.Fatalf("%s: Parse %q, encoding/json %v", name, got, v)
		}
	}
	for _, name := range []string{"crit", "jku", "jwk", "x5u"} {
		if _, ok := m[name]; ok {
			t.Fatalf("accepted %s", name)
		}
	}
}
