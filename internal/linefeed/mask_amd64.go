//go:build !purego

package linefeed

// mask64 returns the line feeds of b[:64] as bits; len(b) >= 64.
func mask64(b []byte) uint64 {
	var m uint64
	sse2Masks(&m, &b[63], 1)
	return m
}

// masks sets dst[k] to the line feeds of src[64k:64k+64]; len(src) >=
// 64*len(dst).
func masks(dst []uint64, src []byte) {
	if len(dst) == 0 {
		return
	}
	sse2Masks(&dst[0], &src[64*len(dst)-1], len(dst))
}

// sse2Masks is masks in one call: n blocks of 64 bytes into dst, the last
// block ending at end (a pointer to the last byte, so that the bounds check
// covers them all).
//
//go:noescape
func sse2Masks(dst *uint64, end *byte, n int)
