package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRSALimitFollowsSigner(t *testing.T) {
	for _, c := range []struct{ signer, key string }{
		{"", "rsa2048_sign_per_s"},
		{signerGo, "rsa2048_sign_per_s"},
		{signerOpenSSL, "rsa2048_sign_openssl_per_s"},
		{"OpenSSL 3.0.22 (cgo, `-tags openssl`)", "rsa2048_sign_openssl_per_s"},
	} {
		if key, _ := rsaLimit(c.signer); key != c.key {
			t.Errorf("rsaLimit(%q) = %s, want %s", c.signer, key, c.key)
		}
	}
	for bin, want := range map[string]bool{"gatehouse": true, "limits": true, "loadgen": false, "upstream": false} {
		if signerTagged(bin) != want {
			t.Errorf("signerTagged(%s) = %v", bin, !want)
		}
	}
}

// With the OpenSSL signer, the report names it and divides RS256 by the
// OpenSSL limit, not by crypto/rsa's.
func TestMarkdownNamesSignerAndItsLimit(t *testing.T) {
	r := sampleResults()
	r.Signer = signerOpenSSL
	r.Limits["rsa2048_sign_openssl_per_s"] = 5000
	key, name := rsaLimit(r.Signer)
	for i := range r.Scenarios {
		if r.Scenarios[i].LimitKey == "rsa2048_sign_per_s" {
			r.Scenarios[i].LimitKey, r.Scenarios[i].LimitName = key, name
		}
	}
	var buf bytes.Buffer
	if err := writeMarkdown(&buf, r, "benchmarks.png"); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"| signer | OpenSSL (cgo, `-tags openssl`)",
		"| `rsa2048_sign_openssl_per_s` | 5000 |",
		"| `rsa2048_sign_per_s` | 2000 |",
		"| RSA-2048 sign (OpenSSL) | 5000 | 0.30 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
