package sqlstore

import (
	"sync"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Fanout hands changes to subscribers, each on a goroutine of its own and
// in the order Publish was called. The zero Fanout is ready to use.
//
// A subscriber's queue is unbounded, so that the writer (or the listener)
// that publishes never waits on a slow subscriber and no change is ever
// dropped: a dropped change would be a stale cache entry.
type Fanout struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

// Subscribe starts delivering every change published from now on to fn.
// After cancel returns fn is not called again, except for a call already
// under way. Once the Fanout is closed Subscribe does nothing and returns
// a cancel that does nothing.
func (f *Fanout) Subscribe(fn func(store.Change)) (cancel func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return func() {}
	}
	if f.subs == nil {
		f.subs = map[*subscriber]struct{}{}
	}
	sub := &subscriber{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	f.subs[sub] = struct{}{}
	go sub.run()
	return func() {
		f.mu.Lock()
		delete(f.subs, sub)
		f.mu.Unlock()
		sub.stop()
	}
}

// Publish queues cs for every current subscriber. Callers that need
// commit order call it in commit order (under their own lock).
func (f *Fanout) Publish(cs []store.Change) {
	if len(cs) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for sub := range f.subs {
		sub.push(cs)
	}
}

// Close stops every subscriber; later Subscribe calls do nothing.
func (f *Fanout) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for sub := range f.subs {
		sub.stop()
		delete(f.subs, sub)
	}
}

// subscriber delivers changes to one fn on its own goroutine.
type subscriber struct {
	fn     func(store.Change)
	mu     sync.Mutex
	queue  []store.Change
	wake   chan struct{} // capacity 1: "the queue is not empty"
	done   chan struct{}
	closer sync.Once
}

func (sub *subscriber) push(cs []store.Change) {
	sub.mu.Lock()
	sub.queue = append(sub.queue, cs...)
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *subscriber) stop() { sub.closer.Do(func() { close(sub.done) }) }

func (sub *subscriber) stopped() bool {
	select {
	case <-sub.done:
		return true
	default:
		return false
	}
}

func (sub *subscriber) run() {
	for {
		select {
		case <-sub.done:
			return
		case <-sub.wake:
		}
		sub.mu.Lock()
		batch := sub.queue
		sub.queue = nil
		sub.mu.Unlock()
		for _, c := range batch {
			if sub.stopped() {
				return
			}
			sub.fn(c)
		}
	}
}
