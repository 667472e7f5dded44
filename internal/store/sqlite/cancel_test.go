package sqlite

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TestWriteCancelledDuringBegin: a request whose context ends while its
// BEGIN IMMEDIATE runs must not leave the one writer connection inside a
// transaction. The driver reports the context's error for a statement it
// interrupted too late, after it had already begun the transaction; before
// the store rolled that back, every later write failed with "cannot start
// a transaction within a transaction" for the life of the store.
func TestWriteCancelledDuringBegin(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	if err := s.CreateRealm(ctx, store.Realm{Name: "r", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	same := func(r store.Realm) (store.Realm, error) { return r, nil }
	// Contexts that end a few microseconds in land, now and then, inside
	// BEGIN. Keep going until enough of those were seen (or time is up:
	// the outcome is then still checked for every write that failed).
	beginErrs := 0
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; beginErrs < 20 && time.Now().Before(deadline); i++ {
		c, cancel := context.WithTimeout(ctx, time.Duration(rand.IntN(150))*time.Microsecond)
		err := s.UpdateRealm(c, "r", same)
		cancel()
		if err == nil {
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "interrupt") {
			t.Fatalf("write %d: unexpected error %v", i, err)
		}
		if strings.Contains(err.Error(), "begin") {
			beginErrs++
		}
		if err := s.UpdateRealm(ctx, "r", same); err != nil {
			t.Fatalf("write after write %d was cancelled (%d cancelled in BEGIN so far): %v", i, beginErrs, err)
		}
	}
	t.Logf("%d writes cancelled during BEGIN", beginErrs)
	if err := s.UpdateRealm(ctx, "r", same); err != nil {
		t.Fatalf("final write: %v", err)
	}
}
