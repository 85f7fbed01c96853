package clock

import (
	"container/heap"
	"sync"
	"time"
)

// Fake is a manual Clock for tests of time-dependent code: time only moves
// when the test calls Advance, so tests never sleep, and timers fire inside
// Advance in due order, which keeps tests deterministic. It is safe for
// concurrent use. The zero value is not usable; call NewFake.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers fakeTimerHeap
}

var _ Clock = (*Fake)(nil)

// NewFake returns a fake clock that reads start until advanced.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake current time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run when the clock has been advanced by d. Unlike
// time.AfterFunc, f runs synchronously inside Advance (in due order), which
// keeps tests deterministic.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, f: f, idx: -1}
	c.schedule(t, d)
	return t
}

// Pending returns how many timers are waiting to fire.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextIn returns how long until the next timer fires, and false when none is pending.
func (c *Fake) NextIn() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return 0, false
	}
	return c.timers[0].when.Sub(c.now), true
}

// Advance moves the clock forward by d, running every timer that falls due
// on the way, each with the clock set to its due time. A timer's function
// may block until another goroutine advances the clock further (a request
// waiting for its deadline); the clock never moves back when it returns.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for len(c.timers) > 0 && !c.timers[0].when.After(end) {
		t := heap.Pop(&c.timers).(*fakeTimer)
		if t.when.After(c.now) {
			c.now = t.when
		}
		f := t.f
		c.mu.Unlock()
		f()
		c.mu.Lock()
	}
	if end.After(c.now) { // a concurrent Advance may have gone further meanwhile
		c.now = end
	}
	c.mu.Unlock()
}

func (c *Fake) schedule(t *fakeTimer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.seq++
	t.when = c.now.Add(d)
	t.seq = c.seq
	heap.Push(&c.timers, t)
}

type fakeTimer struct {
	c    *Fake
	f    func()
	when time.Time
	seq  uint64
	idx  int
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.idx < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.idx)
	return true
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := t.idx >= 0
	if active {
		heap.Remove(&t.c.timers, t.idx)
	}
	t.c.schedule(t, d)
	return active
}

type fakeTimerHeap []*fakeTimer

func (h fakeTimerHeap) Len() int { return len(h) }
func (h fakeTimerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h fakeTimerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *fakeTimerHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *fakeTimerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.idx = -1
	*h = old[:len(old)-1]
	return t
}
