// Command limits measures, in-process and on this machine, the bare rate of
// the operations that bound gatehouse's hot paths: a password check
// (argon2id at Keycloak's defaults), a token signature (RSA-2048, ES256,
// Ed25519; RSA-2048 through OpenSSL too when built with -tags openssl), a
// signature check (RSA-2048 verify, ES256 verify) and a keyed
// SHA-256 (the client-secret check). A server can never beat these numbers;
// a benchmark result divided by the matching limit, measured in the same run,
// says how much of the machine the server turns into useful work.
//
// It prints one JSON object, {"argon2id_verify_per_s": ..., ...}.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Keycloak's argon2 password-hash provider defaults (argon2id, version
// 0x13): 7168 KiB of memory, 5 iterations, parallelism 1, 32-byte hash.
const (
	argonMemoryKiB = 7168
	argonTime      = 5
	argonThreads   = 1
	argonKeyLen    = 32
)

// op is one measured operation: setup builds its keys and inputs once, and
// the returned function does the operation once, reporting a wrong result
// as an error so a broken measurement cannot pass for a fast one.
type op struct {
	name  string
	setup func() (func() error, error)
}

// signingInput is the size of a typical JWT header.payload: a Keycloak
// access token's signing input is a few hundred bytes.
var signingInput = []byte(strings.Repeat("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0", 12))

// ops lists the operations in the order they run and print.
func ops() []op {
	all := []op{
		{"argon2id_verify", setupArgon2id},
		{"rsa2048_sign", setupRSASign},
	}
	// Built with -tags openssl, gatehouse signs RSA through OpenSSL, so
	// its RSA limit is measured with that signer too.
	all = append(all, opensslOps()...)
	return append(all,
		op{"rsa2048_verify", setupRSAVerify},
		op{"es256_sign", setupES256Sign},
		op{"es256_verify", setupES256Verify},
		op{"ed25519_sign", setupEd25519Sign},
		op{"hmac_sha256", setupHMAC},
	)
}

func setupArgon2id() (func() error, error) {
	password := []byte("correct horse battery staple")
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	stored := argon2.IDKey(password, salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return func() error {
		got := argon2.IDKey(password, salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
		if subtle.ConstantTimeCompare(got, stored) != 1 {
			return errors.New("argon2id: verification failed")
		}
		return nil
	}, nil
}

func setupRSASign() (func() error, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return func() error {
		d := sha256.Sum256(signingInput)
		_, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
		return err
	}, nil
}

func setupRSAVerify() (func() error, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(signingInput)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	if err != nil {
		return nil, err
	}
	return func() error {
		d := sha256.Sum256(signingInput)
		return rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], sig)
	}, nil
}

func setupES256Sign() (func() error, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return func() error {
		d := sha256.Sum256(signingInput)
		_, err := ecdsa.SignASN1(rand.Reader, key, d[:])
		return err
	}, nil
}

func setupES256Verify() (func() error, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(signingInput)
	sig, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	if err != nil {
		return nil, err
	}
	return func() error {
		d := sha256.Sum256(signingInput)
		if !ecdsa.VerifyASN1(&key.PublicKey, d[:], sig) {
			return errors.New("es256: verification failed")
		}
		return nil
	}, nil
}

func setupEd25519Sign() (func() error, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return func() error {
		ed25519.Sign(key, signingInput)
		return nil
	}, nil
}

// setupHMAC measures the check of a generated client secret: a keyed
// SHA-256 of the presented 43-character secret compared in constant time
// with the stored value.
func setupHMAC() (func() error, error) {
	pepper := make([]byte, 32)
	if _, err := rand.Read(pepper); err != nil {
		return nil, err
	}
	secret := []byte(strings.Repeat("s", 43))
	mac := hmac.New(sha256.New, pepper)
	mac.Write(secret)
	stored := mac.Sum(nil)
	return func() error {
		m := hmac.New(sha256.New, pepper)
		m.Write(secret)
		if !hmac.Equal(m.Sum(nil), stored) {
			return errors.New("hmac: verification failed")
		}
		return nil
	}, nil
}

// measure runs fn on workers goroutines for d and returns operations per
// second over the wall-clock time the workers actually ran.
func measure(fn func() error, workers int, d time.Duration) (float64, error) {
	var stop atomic.Bool
	var total atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	for range workers {
		wg.Go(func() {
			var n int64
			for !stop.Load() {
				if err := fn(); err != nil {
					errs <- err
					stop.Store(true)
					return
				}
				n++
			}
			total.Add(n)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(total.Load()) / elapsed.Seconds(), nil
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("limits", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names []string
	for _, o := range ops() {
		names = append(names, o.name)
	}
	workers := fs.Int("c", runtime.NumCPU(), "goroutines running each operation at once")
	duration := fs.Duration("duration", 3*time.Second, "how long each operation is measured")
	only := fs.String("only", "", "measure just this one: "+strings.Join(names, " | "))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *workers < 1 || *duration <= 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "limits: -c must be >= 1, -duration > 0, and no arguments")
		return 2
	}
	selected := ops()
	if *only != "" {
		selected = nil
		for _, o := range ops() {
			if o.name == *only || o.name+"_per_s" == *only {
				selected = append(selected, o)
			}
		}
		if len(selected) == 0 {
			fmt.Fprintf(stderr, "limits: -only %q: want one of %s\n", *only, strings.Join(names, ", "))
			return 2
		}
	}

	out, err := measureAll(selected, *workers, *duration, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "limits:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		fmt.Fprintln(stderr, "limits:", err)
		return 1
	}
	return 0
}

// measureAll runs each operation in turn and collects the JSON object,
// noting each result on logw as it comes.
func measureAll(selected []op, workers int, d time.Duration, logw io.Writer) (map[string]any, error) {
	out := map[string]any{
		"goroutines": workers,
		"gomaxprocs": runtime.GOMAXPROCS(0),
		"duration_s": d.Seconds(),
	}
	for _, o := range selected {
		fn, err := o.setup()
		if err != nil {
			return nil, fmt.Errorf("%s: setup: %w", o.name, err)
		}
		rate, err := measure(fn, workers, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.name, err)
		}
		rate = math.Round(rate*10) / 10
		out[o.name+"_per_s"] = rate
		fmt.Fprintf(logw, "%-16s %12.1f /s with %d goroutines (%.1f µs per operation per goroutine)\n",
			o.name, rate, workers, float64(workers)*1e6/rate)
	}
	return out, nil
}
