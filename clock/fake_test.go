package clock_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
)

func TestFakeRunsTimersInOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	fc := clock.NewFake(t0)
	var got []time.Duration
	for _, d := range []time.Duration{3 * time.Second, time.Second, 2 * time.Second, 2 * time.Second} {
		fc.AfterFunc(d, func() { got = append(got, fc.Now().Sub(t0)) })
	}
	require.Equal(t, 4, fc.Pending())
	next, ok := fc.NextIn()
	require.True(t, ok)
	require.Equal(t, time.Second, next)
	fc.Advance(2 * time.Second)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 2 * time.Second}, got)
	require.Equal(t, t0.Add(2*time.Second), fc.Now())
	fc.Advance(time.Hour)
	require.Len(t, got, 4)
	_, ok = fc.NextIn()
	require.False(t, ok)
}

func TestFakeStopReset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		act   func(clock.Timer) bool
		want  bool // what Stop/Reset returned
		fires int
	}{
		{"stop before due", func(tm clock.Timer) bool { return tm.Stop() }, true, 0},
		{"reset later", func(tm clock.Timer) bool { return tm.Reset(10 * time.Second) }, true, 0},
		{"reset sooner", func(tm clock.Timer) bool { return tm.Reset(time.Second) }, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Unix(0, 0))
			var n atomic.Int32
			tm := fc.AfterFunc(5*time.Second, func() { n.Add(1) })
			require.Equal(t, tt.want, tt.act(tm))
			fc.Advance(5 * time.Second)
			require.Equal(t, int32(tt.fires), n.Load())
		})
	}
	fc := clock.NewFake(time.Unix(0, 0))
	tm := fc.AfterFunc(time.Second, func() {})
	fc.Advance(time.Second)
	require.False(t, tm.Stop(), "a fired timer is not active")
	require.False(t, tm.Reset(time.Second), "a fired timer was not active")
	require.Equal(t, 1, fc.Pending())
}

func TestFakeTimerRescheduledInsideAdvance(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Unix(0, 0))
	var n int
	var tm clock.Timer
	tm = fc.AfterFunc(time.Second, func() {
		n++
		tm.Reset(time.Second)
	})
	fc.Advance(10 * time.Second)
	require.Equal(t, 10, n)
}

func TestOrSystem(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Unix(0, 0))
	require.Same(t, fc, clock.OrSystem(fc))
	sys := clock.OrSystem(nil)
	require.WithinDuration(t, time.Now(), sys.Now(), time.Minute)
	done := make(chan struct{})
	sys.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("system AfterFunc did not fire")
	}
}

// A timer that blocks inside Advance until another Advance runs its
// deadline: the clock does not move back when the first Advance returns.
func TestFakeConcurrentAdvance(t *testing.T) {
	t.Parallel()
	start := time.Unix(100, 0)
	c := clock.NewFake(start)
	deadline := make(chan struct{})
	c.AfterFunc(time.Second, func() { <-deadline }) // a request waiting for its deadline
	c.AfterFunc(3*time.Second, func() { close(deadline) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Advance(time.Second)
	}()
	require.Eventually(t, func() bool { return c.Pending() == 1 }, 5*time.Second, time.Millisecond, "the first timer is running")
	c.Advance(2 * time.Second)
	<-done
	require.Equal(t, start.Add(3*time.Second), c.Now())
}
