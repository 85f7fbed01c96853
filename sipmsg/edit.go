package sipmsg

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

const (
	maxEdits   = 24
	arenaSize  = 512
	clMaxWidth = 10
)

// edit replaces src[start:end] with text: arena[tOff:tEnd], or ext when
// non-nil.
type edit struct {
	start, end int
	tOff, tEnd int
	ext        []byte
}

// editor collects non-overlapping edits of one message and writes the
// result in one pass. It lives on the caller's stack: the texts are offsets
// into its arena, so it holds no pointers into itself.
type editor struct {
	src   []byte
	n     int
	edits [maxEdits]edit
	arena [arenaSize]byte
	used  int
	grow  int // how much the edits lengthen the message
	err   error

	// st is the source address formatted for the rewrites, kept with the
	// address it was made from (stOK: made at all): a Message reused per
	// connection or flow sees one source, and formatting it again took
	// about 140 instructions and 15 ns a message
	st    srcText
	stSrc netip.AddrPort
	stOK  bool
}

func (e *editor) reset(src []byte) {
	e.src = src
	e.n = 0
	e.used = 0
	e.grow = 0
	e.err = nil
}

// text starts a replacement text in the arena; finish it with add.
func (e *editor) buf() []byte { return e.arena[e.used:e.used:arenaSize] }

// add records an edit whose text b was appended to e.buf().
func (e *editor) add(start, end int, b []byte) {
	if e.err != nil {
		return
	}
	if e.n == maxEdits || e.used+len(b) > arenaSize || len(b) > 0 && &b[0] != &e.arena[e.used] {
		e.err = perr(start, "rewrite", ErrTooLarge)
		return
	}
	e.set(start, end, e.used, e.used+len(b), nil)
	e.used += len(b)
	e.grow += len(b) - (end - start)
	e.n++
}

// addExt records an edit whose text is caller-owned.
func (e *editor) addExt(start, end int, text []byte) {
	if e.err != nil {
		return
	}
	if e.n == maxEdits {
		e.err = perr(start, "rewrite", ErrTooLarge)
		return
	}
	e.set(start, end, 0, 0, text)
	e.grow += len(text) - (end - start)
	e.n++
}

// set writes edit e.n field by field: a composite literal is built on the
// stack and copied in 16-byte moves, whose loads wait for the 8-byte stores
// that built it (a store-forwarding stall on every edit).
func (e *editor) set(start, end, tOff, tEnd int, ext []byte) {
	ed := &e.edits[e.n]
	ed.start, ed.end, ed.tOff, ed.tEnd, ed.ext = start, end, tOff, tEnd, ext
}

// apply appends src with the edits applied to dst. The body span is written
// through body when non-nil, and the Content-Length value at cl (Start < 0:
// none) is corrected when the body length changes.
func (e *editor) apply(dst []byte, bodySpan Span, body BodyRewriter, cl Span) ([]byte, error) {
	if e.err != nil {
		return dst, e.err
	}
	// insertion sort by start; stable for equal starts (insertions at one point keep order)
	for i := 1; i < e.n; i++ {
		for j := i; j > 0 && e.edits[j].start < e.edits[j-1].start; j-- {
			e.edits[j], e.edits[j-1] = e.edits[j-1], e.edits[j]
		}
	}
	pos := 0
	src := e.src
	// grow dst once: the output is the only allocation
	need := len(src) + e.grow
	if body != nil {
		need += 64 + bodySpan.Len()/8
	}
	if need > cap(dst)-len(dst) {
		dst = grow(dst, need)
	}
	base := len(dst)
	clOut := -1 // offset of the Content-Length value in dst
	hdrEnd := len(src)
	if body != nil {
		hdrEnd = bodySpan.Start
	}
	for i := 0; i < e.n; i++ {
		ed := &e.edits[i]
		if ed.start < pos || ed.end < ed.start || ed.end > hdrEnd {
			return dst[:base], perr(ed.start, "rewrite", ErrMalformed)
		}
		if cl.Start >= pos && cl.Start < ed.start {
			clOut = len(dst) + cl.Start - pos
		}
		dst = append(dst, src[pos:ed.start]...)
		if ed.ext != nil {
			dst = append(dst, ed.ext...)
		} else {
			dst = append(dst, e.arena[ed.tOff:ed.tEnd]...)
		}
		pos = ed.end
	}
	if cl.Start >= pos && cl.Start < hdrEnd {
		clOut = len(dst) + cl.Start - pos
	}
	if body == nil {
		return append(dst, src[pos:]...), nil
	}
	return e.applyBody(dst, base, pos, bodySpan, body, cl, clOut)
}

// grow returns dst with room for need more bytes.
//
//go:noinline
func grow(dst []byte, need int) []byte {
	nd := make([]byte, len(dst), len(dst)+need)
	copy(nd, dst)
	return nd
}

// applyBody is the end of apply for a body written through body: the rest
// of the headers from pos, the body, and the Content-Length value at clOut
// corrected. It is a function of its own so that apply's usual path (no
// body rewrite) stays small in the instruction cache.
//
//go:noinline
func (e *editor) applyBody(dst []byte, base, pos int, bodySpan Span, body BodyRewriter, cl Span, clOut int) ([]byte, error) {
	src := e.src
	dst = append(dst, src[pos:bodySpan.Start]...)
	bs := len(dst)
	var err error
	dst, err = body(dst, bodySpan.In(src))
	if err != nil {
		return dst[:base], err
	}
	newLen := len(dst) - bs
	dst = append(dst, src[bodySpan.End:]...)
	if newLen == bodySpan.Len() || clOut < 0 {
		return dst, nil
	}
	// rewrite the Content-Length digits in place, shifting the rest
	var num [clMaxWidth + 10]byte
	digits := strconv.AppendInt(num[:0], int64(newLen), 10)
	oldW := cl.Len()
	delta := len(digits) - oldW
	if delta > 0 {
		dst = append(dst, num[:delta]...)
	}
	copy(dst[clOut+len(digits):], dst[clOut+oldW:len(dst)-max(delta, 0)])
	copy(dst[clOut:], digits)
	if delta < 0 {
		dst = dst[:len(dst)+delta]
	}
	return dst, nil
}

// BodyRewriter appends a rewritten copy of body to dst (for example the
// sdp package's address rewriting). It must not keep body or dst.
type BodyRewriter func(dst, body []byte) ([]byte, error)

// appendPort appends p in decimal (strconv.AppendUint does the same, slower).
func appendPort(dst []byte, p uint16) []byte {
	w, n := portWord(p)
	return appendWords(dst, n, w, 0)
}

// portWord returns p in decimal as a little-endian word and its length:
// the five digits of p are built in a register and the leading zeros
// shifted out.
func portWord(p uint16) (uint64, int) {
	n := uint32(p)
	d := n / 10000
	r := n - d*10000
	hi := r / 100
	lo := r - hi*100
	w := uint64('0'+d) | uint64(digits2[2*hi])<<8 | uint64(digits2[2*hi+1])<<16 |
		uint64(digits2[2*lo])<<24 | uint64(digits2[2*lo+1])<<32
	width := 1
	if n >= 10 {
		width = 2
		if n >= 100 {
			width = 3
			if n >= 1000 {
				width = 4
				if n >= 10000 {
					width = 5
				}
			}
		}
	}
	return w >> (8 * (5 - width) & 63), width // (& 63: no test for shifts of 64 or more)
}

// appendWords appends the first n bytes (n <= 16) of the little-endian
// words lo and hi. With room in dst the words are stored whole past its end,
// so that text built in registers is never stored in pieces and then read
// back with a wider load (a store-forwarding stall per copy).
func appendWords(dst []byte, n int, lo, hi uint64) []byte {
	d := dst[len(dst):cap(dst)]
	if len(d) < 16 {
		return appendWordBytes(dst, n, lo, hi)
	}
	binary.LittleEndian.PutUint64(d, lo)
	binary.LittleEndian.PutUint64(d[8:], hi)
	return dst[:len(dst)+n]
}

// appendWordBytes is appendWords byte by byte, for a dst without room.
func appendWordBytes(dst []byte, n int, lo, hi uint64) []byte {
	for i := 0; i < n; i++ {
		w := lo
		if i >= 8 {
			w = hi
		}
		dst = append(dst, byte(w>>(8*(i%8))))
	}
	return dst
}

// digits2 holds the two-digit decimal forms of 0..99.
const digits2 = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" +
	"30313233343536373839" + "40414243444546474849" + "50515253545556575859" +
	"60616263646566676869" + "70717273747576777879" + "80818283848586878889" +
	"90919293949596979899"
