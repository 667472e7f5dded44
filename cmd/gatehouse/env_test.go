package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// GATEHOUSE_DB stands in for --db, so that the database password need not
// be in the process list; the password appears in no error or log line.
func TestDBURLFromEnvironment(t *testing.T) {
	t.Setenv(dbEnv, "postgres://postgres:s3cret-pw@127.0.0.1:1/test?connect_timeout=1")
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir()}, &out, &out) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Fatalf("serve with an unreachable %s: %v", dbEnv, err)
		}
		if strings.Contains(err.Error()+out.String(), "s3cret-pw") {
			t.Fatalf("the password was printed: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("serve started without the database %s names", dbEnv)
	}
}
