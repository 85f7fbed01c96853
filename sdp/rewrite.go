package sdp

import (
	"bytes"
	"net/netip"
	"strconv"

	"github.com/sipnat/sipnat/nat"
)

// AppendRewrite appends body to dst with its NAT-broken addresses and ports
// rewritten as opts says, and returns the extended buffer and the Result of
// the NAT tests on body (with Result.Edits set). Every byte outside the
// rewritten spans is copied as received, line endings included, and a body
// without anything to rewrite is copied unchanged; rewriting the output again
// changes nothing. With a buffer of enough capacity it does not allocate.
//
// What is rewritten, to opts.Public:
//   - session and media c= holding a private address (every unicast address
//     with Options.All), with the address type changed to match;
//   - o= the same way, when Options.Origin is set;
//   - a=rtcp addresses (RFC 3605) the same way;
//   - m= and a=rtcp ports, through Options.Ports, in streams whose
//     connection address was rewritten, plus an added a=rtcp line where the
//     mapped RTCP port is not mapped RTP+1.
//
// Left alone: 0.0.0.0 and :: (hold), multicast and FQDN addresses, streams
// with port 0 (rejected), a=candidate lines, and, unless Options.AllowICE is
// set, whole bodies that carry ICE.
//
// On error dst is returned unchanged: ErrBadOptions, ErrTooLarge, or a
// *SyntaxError (errors.Is ErrMalformed).
func AppendRewrite(dst, body []byte, opts *Options) ([]byte, Result, error) {
	pub, err := opts.check()
	if err != nil {
		return dst, Result{}, err
	}
	res, err := scan(body)
	if err != nil {
		return dst, res, err
	}
	if res.Tests&ICE != 0 && !opts.AllowICE {
		res.SkippedICE = true
		return append(dst, body...), res, nil
	}
	w := rewriter{dst: dst, body: body, opts: opts, pub: pub, base: len(dst)}
	w.run()
	res.Edits = w.edits
	return w.dst, res, nil
}

// rewriter is the second pass of AppendRewrite. It copies body to dst
// lazily: body[copied:] is what is not yet written.
type rewriter struct {
	dst    []byte
	body   []byte
	opts   *Options
	pub    netip.Addr
	base   int // len(dst) on entry
	copied int
	edits  int
	eol    []byte // the body's first line ending, for a line added after a last line without one
}

var (
	crlf = []byte("\r\n")
	lf   = []byte("\n")
)

// want reports whether ip is to be replaced by the public address pub.
func want(ip netip.Addr, pub netip.Addr, all bool) bool {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.Unmap() == pub {
		return false
	}
	return all || nat.IsPrivate(ip)
}

// section is what the rewrite needs to know of one m= section before it
// writes the section's first line.
type section struct {
	end     int    // body offset where the section ends
	port    uint16 // m= port
	active  bool   // its connection address is rewritten, so its ports are mapped
	hasRTCP bool   // has a=rtcp
	rtcpMux bool   // has a=rtcp-mux
}

func (w *rewriter) run() {
	b := w.body
	first := nextLine(b, 0)
	w.eol = b[first.end:first.next]
	if len(w.eol) == 0 {
		w.eol = crlf
	}
	sessionActive := false
	markerAt := -1 // dst offset where the session section ends
	markerSeen := false
	var sec section
	inMedia := false
	for i := 0; i < len(b); i = nextLine(b, i).next {
		ln := nextLine(b, i)
		l := b[ln.start:ln.end]
		k := kind(l)
		if k == 'm' {
			if inMedia {
				w.endSection(&sec)
			} else {
				w.flush(ln.start)
				markerAt = len(w.dst)
			}
			inMedia = true
			sec = w.lookAhead(ln, sessionActive)
			w.rewriteMediaPort(ln, &sec)
			continue
		}
		switch {
		case !inMedia && k == 'o' && w.opts.Origin:
			a, _ := parseOriginValue(l[2:])
			if w.rewriteAddr(ln.start+2, a) {
				w.edits++
			}
		case !inMedia && k == 'c':
			a, _ := parseConnValue(l[2:])
			if w.rewriteAddr(ln.start+2, a) {
				w.edits++
				sessionActive = true
			}
		case !inMedia && k == 'a':
			if w.opts.Marker != "" && string(l) == w.opts.Marker {
				markerSeen = true
			}
		case inMedia && sec.port != 0 && k == 'c':
			a, _ := parseConnValue(l[2:])
			if w.rewriteAddr(ln.start+2, a) {
				w.edits++
			}
		case inMedia && sec.port != 0 && k == 'a':
			v := l[2:]
			if key := attrKey(v); bytes.Equal(key, keyRTCP) && len(key) < len(v) {
				w.rewriteRTCP(ln.start+2+len(key)+1, v[len(key)+1:], &sec)
			}
		}
	}
	if inMedia {
		w.endSection(&sec)
	}
	w.flush(len(b))
	if markerAt < 0 {
		markerAt = len(w.dst)
	}
	if w.opts.Marker != "" && w.edits > 0 && !markerSeen {
		w.insert(markerAt, w.opts.Marker, -1)
		w.edits++
	}
}

// flush copies the body up to offset to.
func (w *rewriter) flush(to int) {
	if to > w.copied {
		w.dst = append(w.dst, w.body[w.copied:to]...)
		w.copied = to
	}
}

// lookAhead reads the m= section that starts with line m.
func (w *rewriter) lookAhead(m line, sessionActive bool) section {
	b := w.body
	_, port, _ := parseMediaPort(b[m.start+2 : m.end])
	s := section{end: len(b), port: port}
	hasConn, connActive := false, false
	for i := m.next; i < len(b); {
		ln := nextLine(b, i)
		l := b[ln.start:ln.end]
		switch kind(l) {
		case 'm':
			s.end = ln.start
			i = len(b)
			continue
		case 'c':
			hasConn = true
			if a, _ := parseConnValue(l[2:]); a.isIP && want(a.ip, w.pub, w.opts.All) {
				connActive = true
			}
		case 'a':
			switch key := attrKey(l[2:]); {
			case bytes.Equal(key, keyRTCP):
				s.hasRTCP = true
			case bytes.Equal(key, keyRTCPMux):
				s.rtcpMux = true
			}
		}
		i = ln.next
	}
	if hasConn {
		s.active = connActive
	} else {
		s.active = sessionActive
	}
	s.active = s.active && port != 0
	return s
}

// mapPort returns the public port for local port p and whether the map
// changes it.
func (w *rewriter) mapPort(p uint16) (uint16, bool) {
	if q, ok := w.opts.Ports[p]; ok && q != p {
		return q, true
	}
	return p, false
}

func (w *rewriter) writePort(off int, sp span, port uint16) {
	w.flush(off + sp.s)
	w.dst = strconv.AppendUint(w.dst, uint64(port), 10)
	w.copied = off + sp.e
}

func (w *rewriter) rewriteMediaPort(m line, s *section) {
	if !s.active || w.opts.Ports == nil {
		return
	}
	sp, port, _ := parseMediaPort(w.body[m.start+2 : m.end])
	if q, ok := w.mapPort(port); ok {
		w.writePort(m.start+2, sp, q)
		w.edits++
	}
}

// rewriteAddr replaces the address (and, if the family changes, the
// address type) of a parsed addrField whose value starts at body offset
// off. It reports whether it did.
func (w *rewriter) rewriteAddr(off int, a addrField) bool {
	if !a.isIP || !want(a.ip, w.pub, w.opts.All) {
		return false
	}
	typ := w.body[off+a.typ.s : off+a.typ.e]
	if !familyMatches(typ, w.pub) {
		w.flush(off + a.typ.s)
		w.dst = append(w.dst, addrType(w.pub)...)
		w.copied = off + a.typ.e
	}
	w.flush(off + a.addr.s)
	w.dst = w.pub.AppendTo(w.dst)
	w.copied = off + a.addr.e
	return true
}

// familyMatches reports whether the SDP addrtype token names pub's family.
func familyMatches(typ []byte, pub netip.Addr) bool {
	return len(typ) == 3 && (typ[0]|0x20) == 'i' && (typ[1]|0x20) == 'p' &&
		((pub.Is4() && typ[2] == '4') || (pub.Is6() && typ[2] == '6'))
}

func addrType(pub netip.Addr) string {
	if pub.Is4() {
		return "IP4"
	}
	return "IP6"
}

// rewriteRTCP rewrites an a=rtcp value that starts at body offset off.
func (w *rewriter) rewriteRTCP(off int, v []byte, s *section) {
	rv, ok := parseRTCPValue(v)
	if !ok {
		return
	}
	changed := false
	if s.active && w.opts.Ports != nil {
		if q, ok := w.mapPort(rv.portNum); ok {
			w.writePort(off, rv.port, q)
			changed = true
		}
	}
	if rv.hasAddr && w.rewriteAddr(off, rv.addr) {
		changed = true
	}
	if changed {
		w.edits++
	}
}

// endSection adds a=rtcp at the end of the section s when RTCP's mapped
// port is not mapped RTP+1 and nothing else says where RTCP goes.
func (w *rewriter) endSection(s *section) {
	if !s.active || s.hasRTCP || s.rtcpMux || w.opts.Ports == nil || s.port == 65535 {
		return
	}
	rtp, _ := w.mapPort(s.port)
	rtcp, ok := w.opts.Ports[s.port+1]
	if !ok || int(rtcp) == int(rtp)+1 {
		return
	}
	w.flush(s.end)
	w.insert(len(w.dst), "a=rtcp:", int(rtcp))
	w.edits++
}

// insert puts the line text (followed by num unless num < 0) at dst offset
// pos, with the line ending of the line before it. pos is either the end of
// dst or the start of a line. After a last line without line ending, that
// line gets the body's first line ending, and so does the added line.
func (w *rewriter) insert(pos int, text string, num int) {
	d := w.dst
	old := len(d)
	eol, lead := w.eol, true
	if pos > w.base && d[pos-1] == '\n' {
		lead = false
		eol = lf
		if pos-1 > w.base && d[pos-2] == '\r' {
			eol = crlf
		}
	}
	if lead { // after a last line without line ending
		d = append(d, eol...)
	}
	d = append(d, text...)
	if num >= 0 {
		d = strconv.AppendUint(d, uint64(num), 10)
	}
	d = append(d, eol...) // an added line always ends, so a parser that needs one is happy
	if pos < old {        // rotate the new bytes d[old:] down to pos
		reverse(d[pos:old])
		reverse(d[old:])
		reverse(d[pos:])
	}
	w.dst = d
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}
