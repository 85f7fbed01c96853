//go:build !race

package sipmsg

const raceEnabled = false
