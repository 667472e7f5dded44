//go:build openssl && cgo

package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/jwt"
)

// opensslOps measures RSA-2048 signing through the signer gatehouse itself
// uses in this build (jwt.NewSigner), reported as rsa2048_sign_openssl_per_s.
func opensslOps() []op {
	return []op{{"rsa2048_sign_openssl", setupOpenSSLRSASign}}
}

func setupOpenSSLRSASign() (func() error, error) {
	if b := jwt.RSABackend(); !strings.HasPrefix(b, "OpenSSL") {
		return nil, fmt.Errorf("RSA signer is %s, not OpenSSL", b)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s, err := jwt.NewSigner(jwt.RS256, "", key)
	if err != nil {
		return nil, err
	}
	// PKCS#1 v1.5 is deterministic: the signer must match crypto/rsa byte
	// for byte, or its rate means nothing.
	d := sha256.Sum256(signingInput)
	want, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	if err != nil {
		return nil, err
	}
	got, err := s.Sign(signingInput)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("OpenSSL and crypto/rsa signatures differ")
	}
	return func() error {
		_, err := s.Sign(signingInput)
		return err
	}, nil
}
