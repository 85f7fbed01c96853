// Package fakeclock is a manual clock for tests of time-dependent code in
// sipnat. It satisfies nat.Clock; time only moves when the test calls
// Advance, so tests never sleep.
package fakeclock

import (
	"container/heap"
	"sync"
	"time"

	"github.com/sipnat/sipnat/nat"
)

// Clock is a fake nat.Clock. The zero value is not usable; call New.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers timerHeap
}

var _ nat.Clock = (*Clock)(nil)

// New returns a clock that reads start until advanced.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the fake current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run when the clock has been advanced by d. Unlike
// time.AfterFunc, f runs synchronously inside Advance (in due order), which
// keeps tests deterministic.
func (c *Clock) AfterFunc(d time.Duration, f func()) nat.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, f: f, idx: -1}
	c.schedule(t, d)
	return t
}

// Pending returns how many timers are waiting to fire.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextIn returns how long until the next timer fires, and false when none is pending.
func (c *Clock) NextIn() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return 0, false
	}
	return c.timers[0].when.Sub(c.now), true
}

// Advance moves the clock forward by d, running every timer that falls due
// on the way, each with the clock set to its due time.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for len(c.timers) > 0 && !c.timers[0].when.After(end) {
		t := heap.Pop(&c.timers).(*timer)
		if t.when.After(c.now) {
			c.now = t.when
		}
		f := t.f
		c.mu.Unlock()
		f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

func (c *Clock) schedule(t *timer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.seq++
	t.when = c.now.Add(d)
	t.seq = c.seq
	heap.Push(&c.timers, t)
}

type timer struct {
	c    *Clock
	f    func()
	when time.Time
	seq  uint64
	idx  int
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.idx < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.idx)
	return true
}

func (t *timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := t.idx >= 0
	if active {
		heap.Remove(&t.c.timers, t.idx)
	}
	t.c.schedule(t, d)
	return active
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.idx = -1
	*h = old[:len(old)-1]
	return t
}
