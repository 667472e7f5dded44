//go:build !openssl || !cgo

package main

// opensslOps is empty without -tags openssl: gatehouse then signs with
// crypto/rsa, which rsa2048_sign already measures.
func opensslOps() []op { return nil }
