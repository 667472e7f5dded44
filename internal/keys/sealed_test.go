package keys

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

// A sealed value opens for its own purpose only, and not at all once a
// byte of it changes.
func TestSealJSONPurposes(t *testing.T) {
	m, _ := newTestManager(t, newMemStore(), bytes.Repeat([]byte{7}, 32))
	type claims struct{ Session string }
	v, err := SealJSON(m, "code\x00", claims{"s-1"})
	if err != nil {
		t.Fatal(err)
	}
	var got claims
	if err := OpenJSON(m, "code\x00", v, &got); err != nil || got.Session != "s-1" {
		t.Fatalf("OpenJSON = %+v, %v", got, err)
	}
	if err := OpenJSON(m, "sso\x00", v, &got); !errors.Is(err, ErrPurpose) {
		t.Fatalf("opened for another purpose: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	raw[len(raw)/2] ^= 1
	if err := OpenJSON(m, "code\x00", base64.RawURLEncoding.EncodeToString(raw), &got); err == nil {
		t.Fatal("a changed value opened")
	}
}
