package sipmsg

import (
	"encoding/binary"
	"math/bits"

	"github.com/sipnat/sipnat/internal/linefeed"
)

// lineMarks are the header lines whose names may be Contact or
// Content-Length, told by the names' lengths while the lines are read (bit
// i: header i). The contact walk visits only the first; Parse reads the
// values of the second.
type lineMarks struct {
	contact [2]uint64 // seven bytes with 'o' second, or "m"
	cl      [2]uint64 // fourteen bytes, or one
}

// scanHeaders reads the header lines of b from pos to the empty line into
// m.hdrs and returns where the body starts and the lines that may be
// Content-Length. With fast, runs of lines of the usual form
// ("Name: value" with a name of letters and '-' shorter than 16 bytes, no
// white space around the value) are read by fastLines (on amd64; elsewhere
// it reads none), and this loop reads every other line.
func (m *Message) scanHeaders(b []byte, pos int, fast bool) (int, [2]uint64, error) {
	hdrs := &m.hdrs
	n := 0
	var marks lineMarks
	fail := func(err error) (int, [2]uint64, error) {
		m.nhdr, m.maybeContact = n, marks.contact
		return 0, marks.cl, err
	}
	// The line feeds of the lines this loop reads come from lines, which
	// is moved to pos (Skip) only when such a line comes.
	var lines linefeed.Iter
	lines.Reset(b)
	synced := false
	for {
		if fast && n < MaxHeaders {
			if k, p := fastLines(b, pos, &hdrs[0], n, &marks); k > n {
				n, pos, synced = k, p, false
			}
		}
		if pos >= len(b) {
			return fail(perr(pos, "header", ErrIncomplete))
		}
		c := b[pos]
		if c <= ' ' { // the empty line, a folded line, or a bad name
			if c == '\n' {
				m.hdrEnd = pos
				pos++
				break
			}
			if c == '\r' {
				if pos+1 >= len(b) {
					return fail(perr(pos, "header", ErrIncomplete))
				}
				if b[pos+1] != '\n' {
					return fail(perr(pos, "header", ErrMalformed))
				}
				m.hdrEnd = pos
				pos += 2
				break
			}
		}
		if !synced {
			lines.Skip(pos)
			synced = true
		}
		le := lines.Next()
		if le < 0 {
			le = lines.Refill()
		}
		if le == len(b) {
			return fail(perr(len(b), "header", ErrIncomplete))
		}
		if c <= ' ' && isWS(c) { // folded continuation of the previous header
			if n == 0 {
				return fail(perr(pos, "header", ErrMalformed))
			}
			h := &hdrs[n-1]
			h.line.End = le + 1
			if e := trimRight(b, pos, lineEnd(b, le)); e > pos {
				if h.value.Start == h.value.End {
					h.value.Start = skipWS(b, pos, e)
				}
				h.value.End = e
			}
			pos = le + 1
			continue
		}
		if n == MaxHeaders {
			return fail(perr(pos, "header", ErrTooManyHeaders))
		}
		// the name: letters and '-' a word at a time (tokenEnd, its first
		// word inline), then ':' (white space before it is rare)
		ne := pos
		// (b[le] is a line feed, which stops the scan: the words may
		// reach past le, not past the name)
		for k := 0; k < 2 && ne+8 <= len(b); k++ { // names of up to 16 bytes without a call
			w := ^letterOrDash(binary.LittleEndian.Uint64(b[ne:])) & highBits
			if w != 0 {
				ne += bits.TrailingZeros64(w) >> 3
				break
			}
			ne += 8
		}
		if tokenSet[b[ne]] != 0 { // a digit or other token byte, or a long name
			ne = tokenEnd(b, ne, le)
		}
		if ne == pos {
			return fail(perr(pos, "header name", ErrMalformed))
		}
		i := ne
		if b[i] != ':' {
			i = skipWS(b, i, le)
			if i >= le || b[i] != ':' {
				return fail(perr(i, "header name", ErrMalformed))
			}
		}
		// the value: one space after the colon and a CR before the LF are
		// usual; skipWS and trimRight take the rest
		end := le
		if b[le-1] == '\r' {
			end--
		}
		vs := i + 1
		if vs < end && b[vs] == ' ' {
			vs++
		}
		if vs < end && b[vs] <= ' ' {
			vs = skipWS(b, vs, end)
		}
		ve := end
		if ve > vs && b[ve-1] <= ' ' {
			ve = trimRight(b, vs, ve)
		}
		h := &hdrs[n]
		h.name = Span{pos, ne}
		h.value = Span{vs, ve}
		h.line = Span{pos, le + 1}
		// kinds are found lazily (isKind); only names of 1, 7 and 14 bytes
		// may be Contact or Content-Length
		h.kind = kindUnknown
		if nl := uint(ne - pos); nl < 16 && (1<<1|1<<7|1<<14)>>nl&1 != 0 {
			if nl == 7 && b[pos+1]|0x20 == 'o' || nl == 1 && b[pos]|0x20 == 'm' {
				marks.contact[n>>6&1] |= 1 << (n & 63)
			}
			if nl != 7 {
				marks.cl[n>>6&1] |= 1 << (n & 63)
			}
		}
		n++
		pos = le + 1
	}
	m.nhdr, m.maybeContact = n, marks.contact
	return pos, marks.cl, nil
}
