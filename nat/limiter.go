package nat

import (
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per source address with a bounded table, and
// one for all sources together (off when totalRate is 0), so that spoofing
// many victims' addresses does not multiply what the server sends.
type limiter struct {
	mu        sync.Mutex
	rate      float64 // tokens per second
	burst     float64
	max       int
	m         map[netip.Addr]*bucket
	totalRate float64 // all sources together; 0: no limit
	total     bucket  // its bucket; burst is one second of totalRate
}

type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes a token for a at now and reports whether there was one.
func (l *limiter) allow(a netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[a]
	if b == nil {
		if len(l.m) >= l.max {
			l.sweep(now)
		}
		if len(l.m) >= l.max {
			return false // table full of active sources: refuse new ones
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[a] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	if l.totalRate > 0 {
		t := &l.total
		if t.last.IsZero() {
			t.tokens, t.last = l.totalRate, now
		}
		if el := now.Sub(t.last).Seconds(); el > 0 {
			t.tokens = min(l.totalRate, t.tokens+el*l.totalRate)
			t.last = now
		}
		if t.tokens < 1 {
			return false
		}
		t.tokens--
	}
	b.tokens--
	return true
}

// sweep forgets sources whose bucket has refilled: they are idle.
func (l *limiter) sweep(now time.Time) {
	for a, b := range l.m {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.m, a)
		}
	}
}
