package sqlstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type recorder struct {
	mu  sync.Mutex
	got []store.Change
}

func (r *recorder) add(c store.Change) {
	r.mu.Lock()
	r.got = append(r.got, c)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []store.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Change(nil), r.got...)
}

func change(i int) store.Change {
	return store.Change{Kind: store.ChangeSession, Realm: "acme", ID: fmt.Sprint("s", i)}
}

func TestFanoutDeliversInOrderToEverySubscriber(t *testing.T) {
	var f Fanout
	defer f.Close()
	a, b := &recorder{}, &recorder{}
	cancelA := f.Subscribe(a.add)
	defer cancelA()
	cancelB := f.Subscribe(b.add)
	defer cancelB()
	const n = 1000
	for i := 0; i < n; i += 2 {
		f.Publish([]store.Change{change(i), change(i + 1)})
	}
	f.Publish(nil)
	for name, r := range map[string]*recorder{"a": a, "b": b} {
		waitFor(t, "subscriber "+name, func() bool { return len(r.snapshot()) == n })
		for i, c := range r.snapshot() {
			if c != change(i) {
				t.Fatalf("subscriber %s: change %d = %+v, want %+v", name, i, c, change(i))
			}
		}
	}
}

// A subscriber that does not return must hold up neither the publisher
// nor the other subscribers, and must still get every change once it
// moves again.
func TestFanoutSlowSubscriberBlocksNobody(t *testing.T) {
	var f Fanout
	defer f.Close()
	release := make(chan struct{})
	slow, fast := &recorder{}, &recorder{}
	defer f.Subscribe(func(c store.Change) { <-release; slow.add(c) })()
	defer f.Subscribe(fast.add)()
	const n = 10000
	done := make(chan struct{})
	go func() {
		for i := range n {
			f.Publish([]store.Change{change(i)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish waited for a blocked subscriber")
	}
	waitFor(t, "the fast subscriber", func() bool { return len(fast.snapshot()) == n })
	close(release)
	waitFor(t, "the slow subscriber", func() bool { return len(slow.snapshot()) == n })
}

func TestFanoutCancelAndClose(t *testing.T) {
	var f Fanout
	kept, cancelled := &recorder{}, &recorder{}
	f.Subscribe(kept.add)
	cancel := f.Subscribe(cancelled.add)
	f.Publish([]store.Change{change(0)})
	waitFor(t, "first change", func() bool { return len(kept.snapshot()) == 1 && len(cancelled.snapshot()) == 1 })

	cancel()
	cancel() // twice is harmless
	f.Publish([]store.Change{change(1)})
	waitFor(t, "second change", func() bool { return len(kept.snapshot()) == 2 })

	f.Close()
	f.Publish([]store.Change{change(2)})
	late := f.Subscribe(func(store.Change) { t.Error("subscriber called after Close") })
	late()
	f.Publish([]store.Change{change(3)})
	// Nothing is delivered after Close; give a wrong delivery time to
	// show up.
	time.Sleep(20 * time.Millisecond)
	if n := len(kept.snapshot()); n != 2 {
		t.Fatalf("subscriber got %d changes, want 2 (none after Close)", n)
	}
	if n := len(cancelled.snapshot()); n != 1 {
		t.Fatalf("cancelled subscriber got %d changes, want 1", n)
	}
}

// After cancel returns, fn is not called again even while changes queued
// before the cancel are still being delivered.
func TestFanoutCancelStopsAQueue(t *testing.T) {
	var f Fanout
	defer f.Close()
	var (
		mu        sync.Mutex
		cancelled bool
		late      int
	)
	entered := make(chan struct{})
	release := make(chan struct{})
	first := true
	cancel := f.Subscribe(func(store.Change) {
		if first {
			first = false
			close(entered)
			<-release
			return
		}
		mu.Lock()
		if cancelled {
			late++
		}
		mu.Unlock()
	})
	batch := make([]store.Change, 100)
	for i := range batch {
		batch[i] = change(i)
	}
	f.Publish(batch)
	<-entered
	cancel()
	mu.Lock()
	cancelled = true
	mu.Unlock()
	close(release)
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if late != 0 {
		t.Fatalf("fn called %d times after cancel returned", late)
	}
}
