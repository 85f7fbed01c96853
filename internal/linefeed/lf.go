package linefeed

import "math/bits"

// Mask returns the line feeds of b[i:i+64] as bits (bit k set: b[i+k] is
// '\n'); bytes past the end of b count as no line feed. i must be in
// [0, len(b)].
func Mask(b []byte, i int) uint64 {
	if len(b)-i >= 64 {
		return mask64(b[i : i+64 : i+64])
	}
	if len(b) >= 64 {
		// The last 64 bytes, less those before i shifted out.
		return mask64(b[len(b)-64:]) >> (64 - (len(b) - i))
	}
	var tail [64]byte
	copy(tail[:], b[i:])
	return mask64(tail[:])
}

// BlockRun is how many blocks Blocks reads at most: 512 bytes.
const BlockRun = 8

// Blocks sets masks[k] to the line feeds of the 64-byte block b[i+64k:],
// for as many blocks as start before the end of b (at most BlockRun), and
// returns how many it set; bytes past the end of b count as no line feed.
// i must be in [0, len(b)]. A walk over the blocks' bits, with the masks in
// a local array, keeps the mask of the current block in a register; it is
// the fast form of Iter:
//
//	var m [linefeed.BlockRun]uint64
//	for blk := 0; blk < len(b); blk += 64 * linefeed.BlockRun {
//		for k, bits := range m[:linefeed.Blocks(&m, b, blk)] {
//			for ; bits != 0; bits &= bits - 1 {
//				lf := blk + 64*k + mathbits.TrailingZeros64(bits)
//				...
//			}
//		}
//	}
func Blocks(m *[BlockRun]uint64, b []byte, i int) int {
	full := min((len(b)-i)/64, BlockRun)
	if full > 0 {
		masks(m[:full], b[i:i+64*full])
	}
	if full == BlockRun || i+64*full == len(b) {
		return full
	}
	m[full] = Mask(b, i+64*full)
	return full + 1
}

// Iter walks the line feeds of a buffer in order. The zero value is not
// ready: start it with Reset.
type Iter struct {
	b     []byte
	base  int    // offset of the current block
	m     uint64 // the line feeds of the block not yet returned
	ahead [8]uint64
	k, n  int // ahead[k:n] are the masks of the blocks after the current one
}

// Reset starts the walk at the beginning of b.
func (it *Iter) Reset(b []byte) {
	it.b, it.base, it.m = b, -64, 0 // before the first block: Refill reads it
	it.k, it.n = 0, 0
}

// Next returns the offset of the next line feed in the current 64-byte
// block or in the blocks whose masks are already computed, or -1 when those
// have no more: then Refill computes more and moves on. It is split from
// Refill so that it inlines into a line walk's loop, and a line that ends in
// the next block costs no call:
//
//	e := it.Next()
//	if e < 0 {
//		e = it.Refill()
//	}
func (it *Iter) Next() int {
	m := it.m
	for m == 0 {
		if it.k >= it.n {
			return -1
		}
		m = it.ahead[it.k]
		it.k++
		it.base += 64
	}
	it.m = m & (m - 1)
	return it.base + bits.TrailingZeros64(m)
}

// Refill moves to the next block holding a line feed and returns that line
// feed's offset, or len(b) when there is none (and again on every later
// call).
func (it *Iter) Refill() int {
	b := it.b
	for it.m == 0 {
		next := it.base + 64
		if next >= len(b) {
			it.base = len(b)
			return len(b)
		}
		it.base = next
		if it.k < it.n {
			it.m = it.ahead[it.k]
			it.k++
			continue
		}
		if full := (len(b) - next) / 64; full > 0 {
			// the masks of up to eight blocks in one call
			n := min(full, len(it.ahead))
			masks(it.ahead[:n], b[next:next+64*n])
			it.m, it.k, it.n = it.ahead[0], 1, n
		} else {
			it.m = Mask(b, next)
		}
	}
	return it.Next()
}

// End returns the next line feed's offset, or len(b): Next and Refill in
// one call, for walks that are not hot.
func (it *Iter) End() int {
	if e := it.Next(); e >= 0 {
		return e
	}
	return it.Refill()
}

// Skip drops the line feeds before offset i, so that Next returns the first
// one at or after i. Line walks that consume several lines at once (or none
// of a span) call it.
func (it *Iter) Skip(i int) {
	if i >= len(it.b) {
		it.base, it.m = len(it.b), 0
		return
	}
	if blk := i &^ 63; blk != it.base {
		it.base = blk
		it.m = Mask(it.b, blk)
		it.k, it.n = 0, 0
	}
	it.m &^= 1<<(uint(i)&63) - 1
}
