package main

import (
	"os"
	"os/exec"
	"strings"
)

// Which RSA signer the gatehouse and limits binaries are built with:
// OpenSSL through cgo where libcrypto's headers are installed (what a
// deployment that cares about RS256 throughput would build), else Go's
// crypto/rsa. Both binaries get the same one, so that the RS256 scenarios
// are divided by the limit of the signer the server really used.
const (
	signerGo      = "Go crypto/rsa"
	signerOpenSSL = "OpenSSL (cgo, `-tags openssl`)"
)

// opensslBuildable reports whether -tags openssl can build here: cgo on,
// and libcrypto's development files present (pkg-config, or the header
// where Debian's libssl-dev puts it).
func opensslBuildable() bool {
	if out, err := exec.Command("go", "env", "CGO_ENABLED").Output(); err != nil || strings.TrimSpace(string(out)) != "1" {
		return false
	}
	if exec.Command("pkg-config", "--exists", "libcrypto").Run() == nil {
		return true
	}
	_, err := os.Stat("/usr/include/openssl/evp.h")
	return err == nil
}

// opensslSignerName is signerOpenSSL with libcrypto's version when
// pkg-config knows it.
func opensslSignerName() string {
	if out, err := exec.Command("pkg-config", "--modversion", "libcrypto").Output(); err == nil {
		if v := strings.TrimSpace(string(out)); v != "" {
			return "OpenSSL " + v + " (cgo, `-tags openssl`)"
		}
	}
	return signerOpenSSL
}

// signerTagged says whether binary is one whose RSA signing the build tag
// changes.
func signerTagged(binary string) bool { return binary == "gatehouse" || binary == "limits" }

// rsaLimit is the limit key and name the RS256 scenarios are divided by:
// the rate of the signer the server was built with.
func rsaLimit(signer string) (key, name string) {
	if signer != "" && signer != signerGo {
		return "rsa2048_sign_openssl_per_s", "RSA-2048 sign (OpenSSL)"
	}
	return "rsa2048_sign_per_s", "RSA-2048 sign"
}
