package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// racers is how many goroutines each concurrency test runs at once.
const racers = 50

// race runs fn(i) on racers goroutines released together, and returns
// their errors by index.
func race(fn func(i int) error) []error {
	errs := make([]error, racers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range racers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = fn(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

func online(ss []store.Session) []store.Session {
	var out []store.Session
	for _, s := range ss {
		if !s.Offline {
			out = append(out, s)
		}
	}
	return out
}

const sessionLimit = 5

func testConcurrentDeny(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "u1")
	// An offline session does not count against the limit.
	off := fullSession("r", "offline", "u1", at(0))
	off.Offline = true
	ok(t, s.CreateSession(c, off, admitAll))

	errDenied := errors.New("session limit reached")
	errs := race(func(i int) error {
		ss := fullSession("r", fmt.Sprintf("s%02d", i), "u1", at(time.Duration(i)*time.Millisecond))
		return s.CreateSession(c, ss, func(existing []store.Session) ([]string, error) {
			if len(online(existing)) >= sessionLimit {
				return nil, errDenied
			}
			return nil, nil
		})
	})
	admitted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			admitted++
		case !errors.Is(err, errDenied):
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	mustCount(t, "admitted", admitted, sessionLimit)
	list, err := s.ListUserSessions(c, "r", "u1")
	ok(t, err)
	mustCount(t, "online sessions", len(online(list)), sessionLimit)
	mustCount(t, "all sessions", len(list), sessionLimit+1)
}

func testConcurrentTerminateOldest(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "u1")
	errs := race(func(i int) error {
		ss := fullSession("r", fmt.Sprintf("s%02d", i), "u1", at(time.Duration(i)*time.Millisecond))
		return s.CreateSession(c, ss, func(existing []store.Session) ([]string, error) {
			on := online(existing)
			if n := len(on) - (sessionLimit - 1); n > 0 {
				return sessionIDs(on[:n]), nil
			}
			return nil, nil
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	list, err := s.ListUserSessions(c, "r", "u1")
	ok(t, err)
	mustCount(t, "sessions left", len(list), sessionLimit)
	n, err := s.CountSessions(c, "r")
	ok(t, err)
	mustCount(t, "CountSessions", n, sessionLimit)
}

func testConcurrentRefreshUses(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "u1")
	ss := fullSession("r", "s1", "u1", at(0))
	ss.RefreshUses = 0
	ok(t, s.CreateSession(c, ss, admitAll))

	const maxUses = 3
	errReused := errors.New("refresh token used up")
	errs := race(func(int) error {
		return s.UpdateSession(c, "r", "s1", func(x store.Session) (store.Session, error) {
			if x.RefreshUses >= maxUses {
				return x, errReused
			}
			x.RefreshUses++
			return x, nil
		})
	})
	succeeded := 0
	for i, err := range errs {
		switch {
		case err == nil:
			succeeded++
		case !errors.Is(err, errReused):
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	mustCount(t, "successful refreshes", succeeded, maxUses)
	got, err := s.GetSession(c, "r", "s1")
	ok(t, err)
	mustCount(t, "RefreshUses", got.RefreshUses, maxUses)
}

func testConcurrentUseOnce(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	exp := time.Now().Add(time.Minute)
	errs := race(func(int) error { return s.UseOnce(c, "r", "client/jti", exp) })
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrAlreadyExists):
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	mustCount(t, "successful UseOnce", won, 1)
}
