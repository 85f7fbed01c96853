//go:build !race

package callerconn

// raceEnabled skips allocation checks, which the race detector breaks.
const raceEnabled = false
