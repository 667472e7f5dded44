package sqlite

import (
	"github.com/gatehouse/gatehouse/internal/store"
)

// Subscribe calls fn, on a goroutine of its own, for every change this
// store commits, in commit order. After cancel returns fn is not called
// again, except for a call already under way.
func (s *Store) Subscribe(fn func(store.Change)) (cancel func()) {
	return s.fan.Subscribe(fn)
}

// publish hands committed changes to every subscriber. It is called with
// the write semaphore held, which keeps the order of commits.
func (s *Store) publish(cs []store.Change) { s.fan.Publish(cs) }
