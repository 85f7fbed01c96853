//go:build race

package turn_test

// raceEnabled skips allocation checks, which the race detector breaks.
const raceEnabled = true
