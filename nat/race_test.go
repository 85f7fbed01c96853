//go:build race

package nat

// raceEnabled skips allocation checks, which the race detector breaks.
const raceEnabled = true
