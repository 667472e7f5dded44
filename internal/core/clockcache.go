package core

import (
	"strings"
	"sync/atomic"
)

// clockCache is a string-keyed map bounded to max entries by the CLOCK
// (second-chance) policy: a hit sets the entry's reference bit, and a fill
// into a full cache sweeps a hand over the entries, clearing set bits, and
// replaces the first entry whose bit is clear, that is one not used since
// the hand last passed it. Hot entries therefore survive a stream of
// one-off fills (a scan of many accounts, a flood of new tokens), and a
// hit costs a map lookup and, at most, one atomic store.
//
// It has no lock of its own: get needs its owner's read lock (the bit is
// atomic, so concurrent hits are safe), every other method the write lock.
type clockCache[V any] struct {
	max   int
	idx   map[string]int
	slots []clockSlot[V]
	hand  int
}

type clockSlot[V any] struct {
	key string
	val V
	ref uint32 // accessed atomically under the owner's read lock
}

func newClockCache[V any](max int) *clockCache[V] {
	if max < 1 {
		max = 1
	}
	return &clockCache[V]{max: max, idx: map[string]int{}}
}

func (c *clockCache[V]) get(k string) (V, bool) {
	i, ok := c.idx[k]
	if !ok {
		var zero V
		return zero, false
	}
	sl := &c.slots[i]
	// Load first: a hot entry's bit is already set, and not writing it
	// keeps its cache line shared between cores.
	if atomic.LoadUint32(&sl.ref) == 0 {
		atomic.StoreUint32(&sl.ref, 1)
	}
	return sl.val, true
}

// put adds or replaces k. A new entry starts with its bit clear, so that an
// entry filled once and never read again is the first to go.
func (c *clockCache[V]) put(k string, v V) {
	if i, ok := c.idx[k]; ok {
		c.slots[i].val = v
		return
	}
	if len(c.slots) < c.max {
		c.idx[k] = len(c.slots)
		c.slots = append(c.slots, clockSlot[V]{key: k, val: v})
		return
	}
	// Every bit the hand clears stays clear until the next hit, so the
	// sweep ends within two turns.
	for {
		if c.hand >= len(c.slots) {
			c.hand = 0
		}
		sl := &c.slots[c.hand]
		if atomic.LoadUint32(&sl.ref) != 0 {
			atomic.StoreUint32(&sl.ref, 0)
			c.hand++
			continue
		}
		delete(c.idx, sl.key)
		sl.key, sl.val = k, v
		c.idx[k] = c.hand
		c.hand++
		return
	}
}

// remove drops k; the last slot moves into its place.
func (c *clockCache[V]) remove(k string) {
	i, ok := c.idx[k]
	if !ok {
		return
	}
	delete(c.idx, k)
	last := len(c.slots) - 1
	if i != last {
		c.slots[i] = c.slots[last]
		c.idx[c.slots[i].key] = i
	}
	c.slots[last] = clockSlot[V]{} // let the value be collected
	c.slots = c.slots[:last]
}

// removePrefix drops every key that starts with p.
func (c *clockCache[V]) removePrefix(p string) {
	for k := range c.idx {
		if strings.HasPrefix(k, p) {
			c.remove(k)
		}
	}
}

func (c *clockCache[V]) clear() {
	clear(c.idx)
	clear(c.slots)
	c.slots = c.slots[:0]
	c.hand = 0
}

func (c *clockCache[V]) len() int { return len(c.slots) }
