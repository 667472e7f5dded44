//go:build !openssl || !cgo

package jwt

import "crypto/rsa"

// RSABackend names the implementation behind NewSigner's RS256 and PS256
// signers in this build: Go's crypto/rsa here, OpenSSL's libcrypto when
// built with -tags openssl (and cgo).
func RSABackend() string { return "Go crypto/rsa" }

// newRSASigner is the single place where the RSA implementation is chosen;
// this build has only crypto/rsa.
func newRSASigner(alg, kid string, k *rsa.PrivateKey) Signer {
	return newGoRSASigner(alg, kid, k)
}
