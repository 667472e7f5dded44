//go:build openssl && cgo

package jwt

/*
#cgo LDFLAGS: -lcrypto
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rsa.h>

#if OPENSSL_VERSION_MAJOR < 3
#error "the openssl build tag needs OpenSSL 3 headers (libssl-dev)"
#endif

// gh_load_rsa parses a PKCS#8 DER RSA private key. Anything else (another
// key type, trailing bytes) gives NULL. The thread's error queue is
// cleared so that a failure leaves nothing behind for a later caller.
static EVP_PKEY *gh_load_rsa(const unsigned char *der, long len) {
	const unsigned char *p = der;
	EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, len);
	if (k != NULL && (!EVP_PKEY_is_a(k, "RSA") || p != der + len)) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	ERR_clear_error();
	return k;
}

// gh_sign signs in[0:inlen] with SHA-256 under PKCS#1 v1.5 or, when pss is
// set, PSS with MGF1-SHA-256 and a salt as long as the digest (RFC 7518
// §3.5). It returns the signature length, or -1. Every call has its own
// contexts, so concurrent calls share only the read-only key.
static int gh_sign(EVP_PKEY *k, int pss, const unsigned char *in, size_t inlen,
		unsigned char *sig, size_t cap) {
	static const unsigned char empty = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t n = cap;
	int ok;
	if (in == NULL) {
		in = &empty;
	}
	ok = ctx != NULL
		&& EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, k) == 1
		&& (!pss || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1
			&& EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1
			&& EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1))
		&& EVP_DigestSign(ctx, sig, &n, in, inlen) == 1;
	// Frees pctx too: EVP_DigestSignInit made it part of ctx.
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok ? (int)n : -1;
}
*/
import "C"

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"runtime"
	"strings"
	"unsafe"
)

// RSABackend names the implementation behind NewSigner's RS256 and PS256
// signers in this build: OpenSSL's libcrypto through cgo (for instance
// "OpenSSL 3.0.22 (cgo)"), or Go's crypto/rsa in the default build.
func RSABackend() string {
	v := C.GoString(C.OpenSSL_version(C.OPENSSL_VERSION))
	if f := strings.Fields(v); len(f) >= 2 {
		v = f[0] + " " + f[1]
	}
	return v + " (cgo)"
}

var (
	errOpenSSLKey  = errors.New("jwt: OpenSSL cannot load the RSA key")
	errOpenSSLSign = errors.New("jwt: OpenSSL RSA signing failed")
)

// newRSASigner is the single place where the RSA implementation is chosen:
// OpenSSL, which signs RSA-2048 about 2.5 times as fast as crypto/rsa, and
// crypto/rsa for a key OpenSSL will not take (it was already accepted by
// NewSigner, so signing stays possible, only slower).
func newRSASigner(alg, kid string, k *rsa.PrivateKey) Signer {
	if s, err := newOpenSSLRSASigner(alg, kid, k); err == nil {
		return s
	}
	return newGoRSASigner(alg, kid, k)
}

// opensslRSASigner signs RS256 and PS256 with an EVP_PKEY built once from
// the key. The EVP_PKEY is freed by a cleanup once the signer is
// unreachable: signers are dropped with key-cache snapshots, not closed.
type opensslRSASigner struct {
	headerCache
	pkey *C.EVP_PKEY
	pss  bool
	size int
}

func newOpenSSLRSASigner(alg, kid string, k *rsa.PrivateKey) (*opensslRSASigner, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	pkey := loadRSAKey(der)
	clear(der)
	if pkey == nil {
		return nil, errOpenSSLKey
	}
	s := &opensslRSASigner{headerCache: headerCache{alg: alg, kid: kid}, pkey: pkey, pss: alg == PS256, size: int(C.EVP_PKEY_get_size(pkey))}
	runtime.AddCleanup(s, func(p *C.EVP_PKEY) { C.EVP_PKEY_free(p) }, pkey)
	// One signature checked by crypto/rsa proves that OpenSSL read the key
	// Go holds; a verification costs a few tens of microseconds, once per
	// key load.
	if s.size != k.Size() {
		return nil, errOpenSSLKey
	}
	sig, err := s.Sign([]byte(selfCheckInput))
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256([]byte(selfCheckInput))
	if s.pss {
		err = rsa.VerifyPSS(&k.PublicKey, crypto.SHA256, d[:], sig, pssOptions())
	} else {
		err = rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, d[:], sig)
	}
	if err != nil {
		return nil, errOpenSSLKey
	}
	return s, nil
}

const selfCheckInput = "gatehouse OpenSSL signer self-check"

// loadRSAKey parses PKCS#8 DER into an EVP_PKEY, nil if OpenSSL refuses it
// or it is not RSA.
func loadRSAKey(der []byte) *C.EVP_PKEY {
	if len(der) == 0 {
		return nil
	}
	return C.gh_load_rsa((*C.uchar)(unsafe.Pointer(unsafe.SliceData(der))), C.long(len(der)))
}

func (s *opensslRSASigner) Sign(in []byte) ([]byte, error) {
	sig := make([]byte, s.size)
	pss := C.int(0)
	if s.pss {
		pss = 1
	}
	n := C.gh_sign(s.pkey, pss, (*C.uchar)(unsafe.Pointer(unsafe.SliceData(in))), C.size_t(len(in)),
		(*C.uchar)(unsafe.Pointer(&sig[0])), C.size_t(len(sig)))
	// The cleanup must not free the key while OpenSSL is using it.
	runtime.KeepAlive(s)
	if int(n) != s.size {
		return nil, errOpenSSLSign
	}
	return sig, nil
}
