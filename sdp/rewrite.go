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
	if err := checkBody(body); err != nil {
		return dst, Result{}, err
	}
	w := rewriter{dst: dst, body: body, opts: *opts, pub: pub, base: len(dst)}
	if err := w.run(); err != nil {
		return dst, w.res, err
	}
	w.res.Edits = w.edits
	return w.dst, w.res, nil
}

// checkBody applies the checks every body gets before it is read.
func checkBody(body []byte) error {
	if len(body) > MaxBodySize {
		return ErrTooLarge
	}
	if len(body) < 2 || body[0] != 'v' || body[1] != '=' {
		return &SyntaxError{Line: 1, Field: "v=", Reason: "body does not start with v="}
	}
	return nil
}

// rewriter runs the NAT tests and the rewrite in one pass over the body. It
// copies body to dst lazily: body[copied:] is what is not yet written.
type rewriter struct {
	dst    []byte
	body   []byte
	opts   Options // a copy, so the caller's *Options does not escape
	pub    netip.Addr
	base   int // len(dst) on entry
	copied int
	edits  int
	eol    []byte // the body's first line ending, for a line added after a last line without one
	res    Result
	// dry is set once the body turns out to carry ICE without
	// Options.AllowICE: from then on nothing is written, the tests go on,
	// and the body is copied unchanged at the end.
	dry bool
}

var (
	crlf = []byte("\r\n")
	lf   = []byte("\n")
)

// want reports whether ip is to be replaced by the public address pub.
func want(ip netip.Addr, pub netip.Addr, all bool) bool {
	return wantPriv(ip, nat.IsPrivate(ip), pub, all)
}

// wantPriv is want for an address whose nat.IsPrivate is already known.
func wantPriv(ip netip.Addr, priv bool, pub netip.Addr, all bool) bool {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.Unmap() == pub {
		return false
	}
	return all || priv
}

// section is what the rewrite needs to know of one m= section before it
// writes the section's first line.
type section struct {
	port    uint16 // m= port
	active  bool   // its connection address is rewritten, so its ports are mapped
	hasRTCP bool   // has a=rtcp
	rtcpMux bool   // has a=rtcp-mux
}

func (w *rewriter) run() error {
	b := w.body
	first := nextLine(b, 0)
	w.eol = b[first.end:first.next]
	if len(w.eol) == 0 {
		w.eol = crlf
	}
	var (
		sessionActive bool
		markerAt      = -1 // dst offset where the session section ends
		markerSeen    bool
		sec           section
		media         = -1
		ice           bool
		lineNo        int
	)
	for i := 0; i < len(b); {
		ln := nextLine(b, i)
		i = ln.next
		lineNo++
		l := b[ln.start:ln.end]
		k := kind(l)
		if k == 0 {
			continue
		}
		v, off := l[2:], ln.start+2
		switch k {
		case 'm':
			sp, port, ok := parseMediaPort(v)
			if !ok {
				return &SyntaxError{Line: lineNo, Field: "m=", Reason: "want <media> <port> <proto> <fmt>"}
			}
			if media >= 0 {
				w.endSection(&sec, ln.start)
			} else {
				w.flush(ln.start)
				markerAt = len(w.dst)
			}
			media++
			sec = w.lookAhead(ln, port, sessionActive)
			if sec.active && w.opts.Ports != nil {
				if q, ok := w.mapPort(port); ok {
					w.writePort(off, sp, q)
					w.edits++
				}
			}
		case 'o':
			a, ok := parseOriginValue(v)
			if !ok || media >= 0 || !a.isIP {
				break
			}
			if a.priv {
				w.res.add(Finding{Test: PrivateOrigin, Media: -1, Line: lineNo, Addr: a.ip})
			}
			if w.opts.Origin && w.rewriteAddr(off, a) {
				w.edits++
			}
		case 'c':
			a, ok := parseConnValue(v)
			if !ok || !a.isIP {
				break
			}
			if a.priv {
				t := PrivateSessionConn
				if media >= 0 {
					t = PrivateMediaConn
				}
				w.res.add(Finding{Test: t, Media: media, Line: lineNo, Addr: a.ip})
			}
			if (media < 0 || sec.port != 0) && w.rewriteAddr(off, a) {
				w.edits++
				sessionActive = sessionActive || media < 0
			}
		case 'a':
			if len(v) == 0 || (v[0] != 'r' && v[0] != 'c' && v[0] != 'i' && (media >= 0 || w.opts.Marker == "")) {
				break // not rtcp, rtcp-mux, candidate, ice-ufrag or a session marker
			}
			key := attrKey(v)
			switch {
			case bytes.Equal(key, keyRTCPMux):
				sec.rtcpMux = true
			case bytes.Equal(key, keyRTCP):
				sec.hasRTCP = true
				if len(key) == len(v) {
					break
				}
				rv, ok := parseRTCPValue(v[len(key)+1:])
				if !ok {
					break
				}
				if rv.hasAddr && rv.addr.priv {
					w.res.add(Finding{Test: PrivateRTCP, Media: media, Line: lineNo, Addr: rv.addr.ip})
				}
				if media >= 0 && sec.port != 0 {
					w.rewriteRTCP(off+len(key)+1, rv, &sec)
				}
			case !ice && (bytes.Equal(key, keyCand) || bytes.Equal(key, keyICEUfrag)):
				ice = true
				w.res.add(Finding{Test: ICE, Media: media, Line: lineNo})
				if !w.opts.AllowICE {
					w.dry = true
				}
			case media < 0 && w.opts.Marker != "" && string(l) == w.opts.Marker:
				markerSeen = true
			}
		}
	}
	if w.dry {
		w.res.SkippedICE = true
		w.edits = 0
		w.dst = append(w.dst[:w.base], b...)
		return nil
	}
	if media >= 0 {
		w.endSection(&sec, len(b))
	}
	w.flush(len(b))
	if markerAt < 0 {
		markerAt = len(w.dst)
	}
	if w.opts.Marker != "" && w.edits > 0 && !markerSeen {
		w.insert(markerAt, w.opts.Marker, -1)
		w.edits++
	}
	return nil
}

// flush copies the body up to offset to.
func (w *rewriter) flush(to int) {
	if to > w.copied && !w.dry {
		w.dst = append(w.dst, w.body[w.copied:to]...)
		w.copied = to
	}
}

// lookAhead reads the lines between an m= line and the stream's first a=
// line (RFC 8866 order: i=, c=, b=, k=), and says whether a c= there will
// be rewritten, which decides whether the stream's ports are mapped.
func (w *rewriter) lookAhead(m line, port uint16, sessionActive bool) section {
	b := w.body
	s := section{port: port}
	hasConn, connActive := false, false
	for i := m.next; i < len(b); {
		ln := nextLine(b, i)
		l := b[ln.start:ln.end]
		k := kind(l)
		if k == 'a' || k == 'm' {
			break
		}
		if k == 'c' {
			hasConn = true
			if a, _ := parseConnValue(l[2:]); a.isIP && wantPriv(a.ip, a.priv, w.pub, w.opts.All) {
				connActive = true
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
	if w.dry {
		return
	}
	w.flush(off + sp.s)
	w.dst = strconv.AppendUint(w.dst, uint64(port), 10)
	w.copied = off + sp.e
}

// rewriteAddr replaces the address (and, if the family changes, the
// address type) of a parsed addrField whose value starts at body offset
// off. It reports whether it did.
func (w *rewriter) rewriteAddr(off int, a addrField) bool {
	if w.dry || !a.isIP || !wantPriv(a.ip, a.priv, w.pub, w.opts.All) {
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

// rewriteRTCP rewrites the parsed a=rtcp value rv that starts at body
// offset off.
func (w *rewriter) rewriteRTCP(off int, rv rtcpValue, s *section) {
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

// endSection adds a=rtcp at the end of the section s, which ends at body
// offset end, when RTCP's mapped port is not mapped RTP+1 and nothing else
// says where RTCP goes.
func (w *rewriter) endSection(s *section, end int) {
	if w.dry || !s.active || s.hasRTCP || s.rtcpMux || w.opts.Ports == nil || s.port == 65535 {
		return
	}
	rtp, _ := w.mapPort(s.port)
	rtcp, ok := w.opts.Ports[s.port+1]
	if !ok || int(rtcp) == int(rtp)+1 {
		return
	}
	w.flush(end)
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
	// An added line always ends, so a parser that needs one is happy.
	d = append(d, eol...)
	if pos < old {
		// Rotate the new bytes d[old:] down to pos.
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
