package clock

import "time"

// Clock is the source of time for everything in sipnat whose behaviour
// depends on it: STUN retransmissions, binding-lifetime probes, port-mapping
// leases and keep-alive schedules. It is defined once, here, and the other
// packages take it in their configs. A nil Clock in a config means
// System(). Tests use [Fake] and never sleep.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d has elapsed, like
	// time.AfterFunc, and returns a Timer that can stop or reset it.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the handle AfterFunc returns; its methods behave like those of
// *time.Timer made by time.AfterFunc.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
	// Reset changes the timer to fire after d; it reports whether the timer
	// had been active.
	Reset(d time.Duration) bool
}

// System returns the Clock of the time package.
func System() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// OrSystem returns c, or System() when c is nil. Packages call it on the
// Clock field of their configs.
func OrSystem(c Clock) Clock {
	if c == nil {
		return System()
	}
	return c
}
