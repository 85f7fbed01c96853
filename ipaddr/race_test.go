//go:build race

package ipaddr

const raceEnabled = true
