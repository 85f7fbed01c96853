package clock_test

import (
	"fmt"
	"time"

	"github.com/sipnat/sipnat/clock"
)

// A test moves a Fake clock by hand: timers due on the way run inside
// Advance, each seeing its own due time.
func ExampleFake() {
	t0 := time.Unix(0, 0)
	fc := clock.NewFake(t0)
	var c clock.Clock = fc // what a config's Clock field takes
	var tick clock.Timer
	tick = c.AfterFunc(15*time.Second, func() {
		fmt.Println("keep-alive at", c.Now().Sub(t0))
		tick.Reset(15 * time.Second)
	})
	fc.Advance(40 * time.Second)
	// Output:
	// keep-alive at 15s
	// keep-alive at 30s
}
