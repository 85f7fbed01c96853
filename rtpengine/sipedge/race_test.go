//go:build race

package sipedge

// raceEnabled skips allocation checks, which the race detector breaks.
const raceEnabled = true
