package linefeed

// swarMask returns a bit per byte of x that is '\n' (bit k for byte k),
// exactly: the high bit of a byte is set by (t&l7 + l7) only when its low
// seven bits are not all zero, so no borrow crosses bytes.
func swarMask(x uint64) uint64 {
	const l7 = 0x7f7f7f7f7f7f7f7f
	t := x ^ 0x0a0a0a0a0a0a0a0a
	z := ^((t&l7 + l7) | t | l7) // 0x80 in each zero byte of t
	// gather the eight high bits into the low byte
	return (z >> 7) * 0x0102040810204080 >> 56
}
