package sdp

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/sipnat/sipnat/internal/linefeed"
)

// walkState is what the walk over a body's lines knows between lines.
type walkState struct {
	sec           section // the current m= section
	media         int     // its index, -1 at session level
	lineNo        int     // 1-based number of the current line
	sessionActive bool    // the session c= was rewritten
	ice           bool    // the body carries ICE
	markerSeen    bool    // the marker line is at session level
	markerAt      int     // dst offset where the session section ends, -1 before the first m=
	// attrs says which a= lines the walk hands to attr, by the first byte
	// c of their value: bit c&31. Others are left alone without a call
	// (several bytes share a bit, which only costs a call).
	attrs uint32
}

// The a= values attr acts on, by their first byte (see walkState.attrs).
const (
	attrsRTCP = 1 << ('r' & 31)           // rtcp, rtcp-mux
	attrsICE  = 1<<('c'&31) | 1<<('i'&31) // candidate, ice-ufrag
	attrsAll  = ^uint32(0)
)

// setAttrs updates which a= lines attr must see: every one while the
// current section's activity is pending (the first a= line decides it)
// and at session level with a marker (which may be any line); else only
// a=rtcp, and ICE's until it is found.
func (w *rewriter) setAttrs() {
	s := &w.walk
	switch {
	case s.sec.pending || (s.media < 0 && w.marker != ""):
		s.attrs = attrsAll
	case s.ice:
		s.attrs = attrsRTCP
	default:
		s.attrs = attrsRTCP | attrsICE
	}
}

// run walks the body's lines, 64 line feeds' worth of bits at a time, and
// hands each line that may matter to line: o=, c=, m= and the a= lines
// walkState.attrs names. The others (most a= lines of a body) cost a few
// instructions each.
func (w *rewriter) run() error {
	b := w.body
	s := &w.walk
	w.start()
	var m [linefeed.BlockRun]uint64
	p := 0      // the current line's start
	lineNo := 0 // its number, s.lineNo when line runs
	for blk := 0; blk < len(b); blk += 64 * linefeed.BlockRun {
		for k, lfs := range m[:linefeed.Blocks(&m, b, blk)] {
			for ; lfs != 0; lfs &= lfs - 1 {
				e := blk + 64*k + bits.TrailingZeros64(lfs)
				start := p
				p = e + 1
				lineNo++
				if e-start >= 3 {
					// Lines of two bytes or less go to line, which knows them.
					if b[start+1] != '=' {
						continue
					}
					switch b[start] {
					case 'a':
						if c := b[start+2]; s.attrs>>(c&31)&1 == 0 ||
							c == 'r' && s.attrs != attrsAll && e-start >= 8 && !rtcpKey(b[start:start+8]) {
							continue
						}
					case 'c', 'm', 'o':
					default:
						continue
					}
				}
				s.lineNo = lineNo
				if err := w.line(start, e); err != nil {
					return err
				}
			}
		}
	}
	if p < len(b) {
		// The last line has no line ending.
		s.lineNo = lineNo + 1
		if err := w.line(p, len(b)); err != nil {
			return err
		}
	}
	return w.finish()
}

// rtcpKey reports whether the a= line that starts with the 8 bytes l may
// be one that attr acts on, "a=rtcp:", "a=rtcp-mux" or "a=rtcp" alone,
// rather than a=rtcp-fb, a=rtpmap and the like.
func rtcpKey(l []byte) bool {
	x := binary.LittleEndian.Uint64(l)
	const key = 'r' | 't'<<8 | 'c'<<16 | 'p'<<24
	return uint32(x>>16) == key && (byte(x>>48) != '-' || byte(x>>56) == 'm')
}

// start readies the walk state for the first line.
func (w *rewriter) start() {
	w.walk.media, w.walk.markerAt = -1, -1
	w.setAttrs()
}

// line runs the tests and the rewrite on the line that starts at body
// offset start and ends at the line feed at e (or at the end of the body).
func (w *rewriter) line(start, e int) error {
	b := w.body
	end := e
	if end > start && b[end-1] == '\r' { // CRLF, or a CR alone where the body is cut
		end--
	}
	if end-start < 2 || b[start+1] != '=' {
		return nil
	}
	off := start + 2
	v := b[off:end]
	switch b[start] {
	case 'a':
		w.attr(v, start, end, off)
	case 'c':
		w.conn(v, off)
	case 'm':
		return w.mediaLine(v, start, off)
	case 'o':
		w.originLine(v, off)
	}
	return nil
}

// attr handles the a= line body[start:end] with value v at offset off.
func (w *rewriter) attr(v []byte, start, end, off int) {
	s := &w.walk
	if s.sec.pending {
		w.decide(&s.sec, s.sessionActive)
	}
	if len(v) == 0 {
		return
	}
	switch v[0] {
	case 'r':
		if len(v) < 4 || string(v[:4]) != "rtcp" {
			break
		}
		if len(v) == 4 || v[4] == ':' {
			s.sec.hasRTCP = true
			if len(v) > 4 {
				w.rtcp(v[5:], off+5, &s.sec, s.media, s.lineNo)
			}
			return
		}
		if attrIs(v, "rtcp-mux") {
			s.sec.rtcpMux = true
			return
		}
	case 'c', 'i':
		if !s.ice && (attrIs(v, "candidate") || attrIs(v, "ice-ufrag")) {
			s.ice = true
			w.setAttrs()
			w.res.add(ICE, s.media, s.lineNo, netip.Addr{})
			if !w.allowICE {
				w.dry = true
			}
			return
		}
	}
	if s.media < 0 && w.marker != "" && string(w.body[start:end]) == w.marker {
		s.markerSeen = true
	}
}

// conn handles a c= line with value v at body offset off.
func (w *rewriter) conn(v []byte, off int) {
	s := &w.walk
	typ, tok, ok := parseConnValue(v, w.cache.text)
	var a addrInfo
	if ok {
		a = w.addr(v[tok.s:tok.e])
	}
	if s.sec.pending {
		s.sec.hasConn = true
		if a.want {
			s.sec.connActive = true
			w.decide(&s.sec, s.sessionActive)
		}
	}
	if !a.isIP {
		return
	}
	if w.src.IsValid() && a.ip.Unmap() != w.src && !a.ip.IsUnspecified() && !a.ip.IsMulticast() {
		w.res.add(ConnDiffers, s.media, s.lineNo, a.ip)
	}
	if a.priv {
		t := PrivateSessionConn
		if s.media >= 0 {
			t = PrivateMediaConn
		}
		w.res.add(t, s.media, s.lineNo, a.ip)
	}
	if a.want && !w.dry && (s.media < 0 || s.sec.port != 0) {
		w.rewriteAddr(off, typ, tok)
		w.edits++
		s.sessionActive = s.sessionActive || s.media < 0
	}
}

// mediaLine handles the m= line that starts at body offset start, with
// value v at offset off: the previous section ends, a new one starts.
func (w *rewriter) mediaLine(v []byte, start, off int) error {
	s := &w.walk
	sp, port, ok := parseMediaPort(v)
	if !ok {
		return &SyntaxError{Line: s.lineNo, Field: "m=", Reason: "want <media> <port> <proto> <fmt>"}
	}
	if s.media >= 0 {
		if s.sec.pending {
			w.decide(&s.sec, s.sessionActive)
		}
		w.endSection(&s.sec, start)
	} else if w.marker != "" {
		// Where the marker goes, if it is added.
		w.flush(start)
		s.markerAt = len(w.dst)
	}
	s.media++
	s.sec = section{port: port, portAt: span{off + sp.s, off + sp.e}, pending: true}
	w.setAttrs()
	return nil
}

// originLine handles an o= line with value v at body offset off.
func (w *rewriter) originLine(v []byte, off int) {
	s := &w.walk
	if s.media >= 0 {
		return
	}
	typ, tok, ok := parseOriginValue(v, w.cache.text)
	if !ok {
		return
	}
	a := w.addr(v[tok.s:tok.e])
	if !a.isIP {
		return
	}
	if a.priv {
		w.res.add(PrivateOrigin, -1, s.lineNo, a.ip)
	}
	if w.origin && a.want && !w.dry {
		w.rewriteAddr(off, typ, tok)
		w.edits++
	}
}

// finish ends the walk: the last section, the rest of the body, the
// marker; or, in a dry run, the body copied unchanged.
func (w *rewriter) finish() error {
	s := &w.walk
	b := w.body
	if w.check {
		return nil
	}
	if w.dry {
		w.res.SkippedICE = true
		w.edits = 0
		w.dst = append(w.dst[:w.base], b...)
		return nil
	}
	if s.media >= 0 {
		if s.sec.pending {
			w.decide(&s.sec, s.sessionActive)
		}
		w.endSection(&s.sec, len(b))
	}
	w.flush(len(b))
	markerAt := s.markerAt
	if markerAt < 0 {
		markerAt = len(w.dst)
	}
	if w.marker != "" && w.edits > 0 && !s.markerSeen {
		w.insert(markerAt, w.marker, -1)
		w.edits++
	}
	return nil
}
