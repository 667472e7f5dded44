package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyEnv is the environment variable that, when set, holds the master
// key (32 bytes, base64 standard or URL alphabet, padded or not). It wins over
// the key file, so that replicas can share one key without sharing a disk.
const MasterKeyEnv = "GATEHOUSE_MASTER_KEY"

// MasterKeySize is the size of the master key: an AES-256 key.
const MasterKeySize = 32

// sealVersion prefixes every sealed value, so that the format (AES-256-GCM,
// 12-byte nonce) can change later without guessing what old values are.
const sealVersion byte = 1

// ErrOpen: sealed data could not be opened (wrong master key, corrupted or
// truncated data, unknown format version). It never says which.
var ErrOpen = errors.New("keys: cannot open sealed data")

// LoadMasterKey returns the master key from $GATEHOUSE_MASTER_KEY if that is
// set and not empty, else from the file at path. A missing file is created
// (mode 0600, its directory 0700) holding a fresh random key, and created
// reports it, so that a first start needs no setup. The file holds the key
// in standard base64 on one line.
func LoadMasterKey(path string) (key []byte, created bool, err error) {
	if v := os.Getenv(MasterKeyEnv); v != "" {
		key, err := decodeMasterKey(v)
		if err != nil {
			return nil, false, fmt.Errorf("keys: %s: %w", MasterKeyEnv, err)
		}
		return key, false, nil
	}
	if path == "" {
		return nil, false, errors.New("keys: no master key: set " + MasterKeyEnv + " or give a key file")
	}
	key, err = readMasterKeyFile(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key = make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	won, err := createMasterKeyFile(path, key)
	if err != nil {
		return nil, false, err
	}
	if !won {
		// Another process created the file first; use its key.
		key, err = readMasterKeyFile(path)
		return key, false, err
	}
	return key, true, nil
}

func readMasterKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := decodeMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("keys: master key file %s: %w", path, err)
	}
	return key, nil
}

// createMasterKeyFile writes the key to a temporary file and links it into
// place, so that a concurrent reader never sees a half-written key and an
// existing file is never replaced. won is false if path already existed.
func createMasterKeyFile(path string, key []byte) (won bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("keys: creating master key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".masterkey-*")
	if err != nil {
		return false, fmt.Errorf("keys: creating master key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already uses 0600; Chmod makes it independent of that.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, err
	}
	data := base64.StdEncoding.EncodeToString(key) + "\n"
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("keys: writing master key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("keys: writing master key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("keys: creating master key file: %w", err)
	}
	return true, nil
}

// decodeMasterKey accepts the four base64 variants people produce
// (openssl rand -base64 32 gives padded standard base64).
func decodeMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := e.DecodeString(s); err == nil {
			if len(k) != MasterKeySize {
				return nil, fmt.Errorf("master key is %d bytes, want %d", len(k), MasterKeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("master key is not base64")
}

// sealer encrypts with AES-256-GCM under the master key.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(master []byte) (*sealer, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("keys: master key must be %d bytes", MasterKeySize)
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal returns version || nonce || ciphertext. The version byte is also the
// additional data, so it cannot be changed without failing authentication.
func (s *sealer) seal(plain []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[1:1+ns], plain, out[:1]), nil
}

func (s *sealer) open(sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrOpen
	}
	plain, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], sealed[:1])
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
