//go:build !purego

package linefeed

// mask64 returns the line feeds of b[:64] as bits; len(b) >= 64.
func mask64(b []byte) uint64 { return sse2Mask(&b[63]) }

// sse2Mask reads the 64 bytes ending at end (&b[63], so that the bounds
// check covers them all).
//
//go:noescape
func sse2Mask(end *byte) uint64

// masks sets dst[k] to the line feeds of src[64k:64k+64]; len(src) >=
// 64*len(dst).
func masks(dst []uint64, src []byte) {
	if len(dst) == 0 {
		return
	}
	_ = src[64*len(dst)-1]
	sse2Masks(&dst[0], &src[0], len(dst))
}

// sse2Masks is masks in one call: n blocks of 64 bytes from src into dst.
//
//go:noescape
func sse2Masks(dst *uint64, src *byte, n int)
