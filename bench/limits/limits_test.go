package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

func TestEveryOperationMeasuresAPositiveRate(t *testing.T) {
	var logs bytes.Buffer
	out, err := measureAll(ops(), 1, 60*time.Millisecond, &logs)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops() {
		rate, ok := out[o.name+"_per_s"].(float64)
		if !ok || rate <= 0 {
			t.Errorf("%s_per_s = %v", o.name, out[o.name+"_per_s"])
		}
	}
	// The ordering the cost model relies on: a keyed hash is far cheaper
	// than any signature, and argon2id is the slowest of all.
	if out["hmac_sha256_per_s"].(float64) < out["es256_sign_per_s"].(float64) ||
		out["argon2id_verify_per_s"].(float64) > out["rsa2048_sign_per_s"].(float64) {
		t.Errorf("implausible ordering: %v", out)
	}
}

func TestMeasureReportsAWrongResult(t *testing.T) {
	fn, err := setupArgon2id()
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(); err != nil {
		t.Fatalf("argon2id does not verify its own hash: %v", err)
	}
	calls := 0
	_, err = measure(func() error {
		calls++
		if calls > 3 {
			return io.ErrUnexpectedEOF
		}
		return nil
	}, 1, time.Second)
	if err == nil {
		t.Fatal("a failing operation was measured as a rate")
	}
}

func TestOnlyFlag(t *testing.T) {
	var out, errw bytes.Buffer
	if code := realMain([]string{"-only", "hmac_sha256", "-duration", "50ms", "-c", "2"}, &out, &errw); code != 0 {
		t.Fatalf("exit %d: %s", code, errw.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["hmac_sha256_per_s"]; !ok || len(m) != 4 {
		t.Errorf("output %v", m)
	}
	if code := realMain([]string{"-only", "md5"}, io.Discard, &errw); code != 2 || !strings.Contains(errw.String(), "want one of") {
		t.Errorf("unknown -only: exit %d", code)
	}
}
