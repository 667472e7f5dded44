//go:build openssl && cgo

package main

import (
	"testing"
	"time"
)

// The OpenSSL signer's limit is measured, after its self-check against
// crypto/rsa passed.
func TestOpenSSLLimitIsMeasured(t *testing.T) {
	out, err := measureAll(opensslOps(), 1, 100*time.Millisecond, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if rate, ok := out["rsa2048_sign_openssl_per_s"].(float64); !ok || rate <= 0 {
		t.Errorf("rsa2048_sign_openssl_per_s = %v", out["rsa2048_sign_openssl_per_s"])
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
