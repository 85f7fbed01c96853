//go:build !purego

package linefeed

// mask64 returns the line feeds of b[:64] as bits; len(b) >= 64.
func mask64(b []byte) uint64 { return sse2Mask(&b[63]) }

// sse2Mask reads the 64 bytes ending at end (&b[63], so that the bounds
// check covers them all).
//
//go:noescape
func sse2Mask(end *byte) uint64
