package server

import (
	"math"
	"net"
	"sync"
	"time"
)

// rateLimiter is a token bucket per client address for the token
// endpoints: rate tokens per second, up to burst. Idle buckets are
// forgotten so that the map stays small.
type rateLimiter struct {
	rate     float64
	burst    float64
	loopback bool

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int, loopback bool) *rateLimiter {
	if burst < 1 {
		burst = int(math.Max(1, math.Ceil(rate)))
	}
	return &rateLimiter{rate: rate, burst: float64(burst), loopback: loopback, buckets: map[string]*bucket{}, now: time.Now}
}

// Allow takes one token from ip's bucket.
func (l *rateLimiter) Allow(ip string) (bool, int) {
	if !l.loopback {
		if a := net.ParseIP(ip); a != nil && a.IsLoopback() {
			return true, 0
		}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[ip]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[ip] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := int(math.Ceil((1 - b.tokens) / l.rate))
	if wait < 1 {
		wait = 1
	}
	return false, wait
}
