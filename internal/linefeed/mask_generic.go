//go:build !amd64 || purego

package linefeed

import "encoding/binary"

// mask64 returns the line feeds of b[:64] as bits; len(b) >= 64. Eight
// bytes at a time: a byte of x is zero where b has '\n', and the exact
// zero-byte test (no false positives from borrows) marks it.
func mask64(b []byte) uint64 {
	_ = b[63]
	var m uint64
	for k := 0; k < 64; k += 8 {
		m |= swarMask(binary.LittleEndian.Uint64(b[k:])) << k
	}
	return m
}

// masks sets dst[k] to the line feeds of src[64k:64k+64]; len(src) >=
// 64*len(dst).
func masks(dst []uint64, src []byte) {
	for k := range dst {
		dst[k] = mask64(src[64*k : 64*k+64])
	}
}
