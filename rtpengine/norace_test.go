//go:build !race

package rtpengine

const raceEnabled = false
