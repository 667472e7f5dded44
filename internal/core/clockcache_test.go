package core

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestClockCacheKeepsHotEntries: entries read between fills survive a
// stream of one-off fills many times the cache's size, and the cache never
// holds more than its bound.
func TestClockCacheKeepsHotEntries(t *testing.T) {
	c := newClockCache[int](100)
	hot := []string{"h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"}
	for i, k := range hot {
		c.put(k, i)
	}
	for i := range 10_000 {
		c.put("cold"+strconv.Itoa(i), i)
		if c.len() > 100 {
			t.Fatalf("%d entries, bound 100", c.len())
		}
		for j, k := range hot {
			if v, ok := c.get(k); !ok || v != j {
				t.Fatalf("hot entry %s lost after %d fills", k, i+1)
			}
		}
	}
	if _, ok := c.get("cold0"); ok {
		t.Fatal("the first one-off entry outlived 10,000 fills")
	}
}

// TestClockCacheConsistent runs random operations against a map: every
// entry the cache holds has the map's value, the index and the slots agree,
// and only a fill into a full cache loses an entry.
func TestClockCacheConsistent(t *testing.T) {
	c := newClockCache[int](50)
	ref := map[string]int{}
	r := rand.New(rand.NewPCG(1, 2))
	key := func() string { return strconv.Itoa(r.IntN(4)) + "\x00" + strconv.Itoa(r.IntN(100)) }
	for i := range 50_000 {
		switch op := r.IntN(10); {
		case op < 5:
			k := key()
			before := c.len()
			c.put(k, i)
			ref[k] = i
			if _, ok := c.get(k); !ok {
				t.Fatal("entry missing right after put")
			}
			if before < 50 && c.len() != before+1 && c.len() != before {
				t.Fatalf("len %d → %d", before, c.len())
			}
		case op < 8:
			c.get(key())
		case op < 9:
			k := key()
			c.remove(k)
			delete(ref, k)
		default:
			p := strconv.Itoa(r.IntN(4)) + "\x00"
			c.removePrefix(p)
			for k := range ref {
				if k[:len(p)] == p {
					delete(ref, k)
				}
			}
		}
		if c.len() > 50 || len(c.idx) != c.len() {
			t.Fatalf("len %d, index %d", c.len(), len(c.idx))
		}
		for k, i := range c.idx {
			if c.slots[i].key != k {
				t.Fatalf("index %s → slot of %s", k, c.slots[i].key)
			}
			if v, ok := ref[k]; !ok || v != c.slots[i].val {
				t.Fatalf("%s: cached %d, want %d (%v)", k, c.slots[i].val, v, ok)
			}
		}
	}
	c.clear()
	if c.len() != 0 || len(c.idx) != 0 {
		t.Fatal("clear left entries")
	}
}
