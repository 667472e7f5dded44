package sqlite

import (
	"sync"

	"github.com/gatehouse/gatehouse/internal/store"
)

// subscriber delivers changes to one fn on its own goroutine. Its queue is
// unbounded so that the writer never waits on a slow subscriber and no
// change is ever dropped: a dropped change would be a stale cache entry.
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

// Subscribe calls fn, on a goroutine of its own, for every change this
// store commits, in commit order. After cancel returns fn is not called
// again, except for a call already under way.
func (s *Store) Subscribe(fn func(store.Change)) (cancel func()) {
	sub := &subscriber{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.subMu.Lock()
	if s.closed {
		s.subMu.Unlock()
		return func() {}
	}
	s.subs[sub] = struct{}{}
	s.subMu.Unlock()
	go sub.run()
	return func() {
		s.subMu.Lock()
		delete(s.subs, sub)
		s.subMu.Unlock()
		sub.stop()
	}
}

// publish hands committed changes to every subscriber. It is called with
// the write semaphore held, which keeps the order of commits.
func (s *Store) publish(cs []store.Change) {
	if len(cs) == 0 {
		return
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		sub.push(cs)
	}
}
