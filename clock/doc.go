// Package clock is the one source of time for sipnat: the Clock interface
// that every package whose behaviour depends on time takes in its config
// (STUN retransmissions, binding-lifetime probes, port-mapping leases,
// keep-alive schedules), the system clock, and Fake, a manual clock for
// tests that never sleep.
//
// It depends on nothing but the standard library, so packages that only
// schedule timers link nothing else through it.
//
// # Usage
//
// A config whose Clock field is nil runs on the system clock:
//
//	type Config struct {
//		Clock clock.Clock // nil: the system clock
//	}
//	c := clock.OrSystem(cfg.Clock)
//	t := c.AfterFunc(15*time.Second, refresh)
//
// A test hands in a Fake and moves time itself; timers due on the way run
// inside Advance, in order:
//
//	fc := clock.NewFake(time.Unix(0, 0))
//	k, _ := keepalive.NewKeeper(keepalive.KeeperConfig{Clock: fc, ...})
//	fc.Advance(30 * time.Second) // runs every keep-alive due in 30 s
//
// The system clock and Fake are safe for concurrent use.
package clock
