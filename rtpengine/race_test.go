//go:build race

package rtpengine

const raceEnabled = true
