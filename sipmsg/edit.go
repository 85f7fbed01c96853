package sipmsg

import (
	"net/netip"
	"strconv"
)

const (
	maxEdits   = 16
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
	err   error
}

func (e *editor) reset(src []byte) {
	e.src = src
	e.n = 0
	e.used = 0
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
	e.edits[e.n] = edit{start: start, end: end, tOff: e.used, tEnd: e.used + len(b)}
	e.used += len(b)
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
	e.edits[e.n] = edit{start: start, end: end, ext: text}
	e.n++
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
	need := len(src)
	for i := 0; i < e.n; i++ {
		ed := &e.edits[i]
		need += ed.tEnd - ed.tOff + len(ed.ext) - (ed.end - ed.start)
	}
	if body != nil {
		need += 64 + bodySpan.Len()/8
	}
	if need > cap(dst)-len(dst) {
		nd := make([]byte, len(dst), len(dst)+need)
		copy(nd, dst)
		dst = nd
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

func appendPort(dst []byte, p uint16) []byte { return strconv.AppendUint(dst, uint64(p), 10) }

// appendAddrParam appends an address as a Via received= value: IPv6
// without brackets (RFC 3261 §20.42 grammar).
func appendAddrParam(dst []byte, a netip.Addr) []byte {
	a = a.Unmap()
	if a.Is4() {
		return appendIPv4(dst, a)
	}
	return a.WithZone("").AppendTo(dst)
}
