package sdp

import (
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
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
	// Field by field: a composite literal of this size is built in a
	// temporary and copied.
	var w rewriter
	w.dst, w.body, w.base = dst, body, len(dst)
	w.pub, w.ports, w.marker = pub, opts.Ports, opts.Marker
	w.origin, w.all, w.allowICE = opts.Origin, opts.All, opts.AllowICE
	w.nat64 = opts.NAT64
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
// copies body to dst lazily: body[copied:] is what is not yet written, so
// the unchanged runs between rewritten spans go out with one append each.
type rewriter struct {
	dst    []byte
	body   []byte
	res    Result
	base   int // len(dst) on entry
	copied int
	edits  int
	walk   walkState

	// The options (copied, so the caller's *Options does not escape).
	pub                   netip.Addr
	ports                 []PortMap
	origin, all, allowICE bool
	marker                string
	pubText               [48]byte // pub's text form, once pubLen > 0
	pubLen                int
	cache                 addrCache    // with addrInfo.want set
	nat64                 netip.Prefix // Options.NAT64: IPv4 addresses become synthesised IPv6 ones
	// dry is set once the body turns out to carry ICE without
	// Options.AllowICE: from then on nothing is written, the tests go on,
	// and the body is copied unchanged at the end.
	dry bool
	// check is Check's pass: dry from the start, and nothing copied.
	check bool
	// src, when valid (CheckFrom), is the address the body came from,
	// unmapped: c= addresses other than it fire ConnDiffers.
	src netip.Addr
}

var (
	crlf = []byte("\r\n")
	lf   = []byte("\n")
)

// want reports whether ip is to be replaced by the public address pub.
func want(ip netip.Addr, pub netip.Addr, all bool) bool {
	return wantPriv(ip, ipaddr.IsPrivate(ip), pub, all)
}

// wantPriv is want for an address whose ipaddr.IsPrivate is already known.
func wantPriv(ip netip.Addr, priv bool, pub netip.Addr, all bool) bool {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.Unmap() == pub {
		return false
	}
	return all || priv
}

// addr classifies the address token tok, through the one-entry cache.
func (w *rewriter) addr(tok []byte) addrInfo {
	c := &w.cache
	if string(tok) != string(c.text) {
		a := classify(tok)
		a.want = a.isIP && wantPriv(a.ip, a.priv, w.pub, w.all)
		if w.nat64.IsValid() {
			a.want = a.isIP && a.ip.Unmap().Is4() && !a.ip.IsUnspecified() && !a.ip.IsMulticast()
		}
		c.text, c.info = tok, a
	}
	return c.info
}

// section is what the rewrite knows of the current m= section.
type section struct {
	port    uint16 // m= port
	rtp     uint16 // the mapped m= port, once decided with active and a port map
	portAt  span   // the m= port's body offsets
	active  bool   // its connection address is rewritten, so its ports are mapped
	hasRTCP bool   // has a=rtcp
	rtcpMux bool   // has a=rtcp-mux

	// Until the first a= or m= line after the m= line (RFC 8866 order:
	// i=, c=, b=, k=, then a=) whether the section is active is pending:
	// any c= there that is rewritten makes it active; without c= the
	// session's c= decides. Nothing after the m= port is written while
	// it is pending.
	pending    bool
	hasConn    bool
	connActive bool
}

// flush copies the body up to offset to.
func (w *rewriter) flush(to int) {
	if to > w.copied && !w.dry {
		w.dst = append(w.dst, w.body[w.copied:to]...)
		w.copied = to
	}
}

// decide ends the pending state of s: whether its ports are mapped, and
// the m= port rewrite if they are.
func (w *rewriter) decide(s *section, sessionActive bool) {
	s.pending = false
	w.setAttrs()
	act := sessionActive
	if s.hasConn {
		act = s.connActive
	}
	s.active = act && s.port != 0
	if s.active && len(w.ports) > 0 {
		q, ok := w.mapPort(s.port)
		s.rtp = q
		if ok {
			w.writePort(s.portAt, q)
			w.edits++
		}
	}
}

// mapPort returns the public port for local port p and whether the map
// changes it.
func (w *rewriter) mapPort(p uint16) (uint16, bool) {
	if q, ok := lookupPort(w.ports, p); ok && q != p {
		return q, true
	}
	return p, false
}

// writePort replaces the port at body offsets at.
func (w *rewriter) writePort(at span, port uint16) {
	if w.dry {
		return
	}
	w.flush(at.s)
	w.dst = appendPort(w.dst, port)
	w.copied = at.e
}

// appendPort appends p in decimal.
func appendPort(b []byte, p uint16) []byte {
	v := uint32(p)
	if v >= 10000 {
		b = append(b, byte('0'+v/10000))
	}
	if v >= 1000 {
		b = append(b, byte('0'+v/1000%10))
	}
	if v >= 100 {
		b = append(b, byte('0'+v/100%10))
	}
	if v >= 10 {
		b = append(b, byte('0'+v/10%10))
	}
	return append(b, byte('0'+v%10))
}

// rewriteAddr replaces the address at value offsets addr (and, if the
// family changes, the address type at typ) of the line value that starts
// at body offset off.
func (w *rewriter) rewriteAddr(off int, typ, addr span) {
	if w.nat64.IsValid() {
		w.rewriteNAT64(off, typ, addr)
		return
	}
	if !familyMatches(w.body[off+typ.s:off+typ.e], w.pub) {
		w.flush(off + typ.s)
		w.dst = append(w.dst, addrType(w.pub)...)
		w.copied = off + typ.e
	}
	w.flush(off + addr.s)
	if w.pubLen == 0 {
		w.pubLen = len(w.pub.AppendTo(w.pubText[:0]))
	}
	if d, n := w.dst, len(w.dst); cap(d)-n >= len(w.pubText) {
		// The whole array, a fixed-size copy without a call; only pubLen
		// bytes of it are kept.
		*(*[len(w.pubText)]byte)(d[n : n+len(w.pubText)]) = w.pubText
		w.dst = d[:n+w.pubLen]
	} else {
		w.dst = append(d, w.pubText[:w.pubLen]...)
	}
	w.copied = off + addr.e
}

// rewriteNAT64 replaces the IPv4 address at value offsets addr with its
// synthesised IPv6 address under Options.NAT64 and the address type with
// IP6 (the address was classified as an IPv4 one before).
func (w *rewriter) rewriteNAT64(off int, typ, addr span) {
	ip, _ := ipaddr.Parse(w.body[off+addr.s : off+addr.e])
	syn, err := ipaddr.SynthesizeNAT64(w.nat64, ip)
	if err != nil {
		return // the prefix was checked: not reached
	}
	w.flush(off + typ.s)
	w.dst = append(w.dst, "IP6"...)
	w.copied = off + typ.e
	w.flush(off + addr.s)
	w.dst = syn.AppendTo(w.dst)
	w.copied = off + addr.e
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

// rtcp runs the test on, and rewrites, the a=rtcp value v that starts at
// body offset off.
func (w *rewriter) rtcp(v []byte, off int, s *section, media, lineNo int) {
	rv, ok := parseRTCPValue(v, w.cache.text)
	if !ok {
		return
	}
	var a addrInfo
	if rv.hasAddr {
		a = w.addr(v[rv.addr.s:rv.addr.e])
		if a.priv {
			w.res.add(PrivateRTCP, media, lineNo, a.ip)
		}
	}
	if media < 0 || s.port == 0 || w.dry {
		return
	}
	changed := false
	if s.active && len(w.ports) > 0 {
		if q, ok := w.mapPort(rv.portNum); ok {
			w.writePort(span{off + rv.port.s, off + rv.port.e}, q)
			changed = true
		}
	}
	if a.want {
		w.rewriteAddr(off, rv.typ, rv.addr)
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
	if w.dry || !s.active || s.hasRTCP || s.rtcpMux || len(w.ports) == 0 || s.port == 65535 {
		return
	}
	rtcp, ok := lookupPort(w.ports, s.port+1)
	if !ok || int(rtcp) == int(s.rtp)+1 {
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
	var eol []byte
	lead := true
	if pos > w.base && d[pos-1] == '\n' {
		lead = false
		eol = lf
		if pos-1 > w.base && d[pos-2] == '\r' {
			eol = crlf
		}
	} else {
		// The body's first line ending, CRLF if it has none.
		first := nextLine(w.body, 0)
		if eol = w.body[first.end:first.next]; len(eol) == 0 {
			eol = crlf
		}
	}
	d = appendLine(d, lead, eol, text, num)
	if pos < old {
		// Move the bytes after pos up and write the line again at pos.
		n := len(d) - old
		copy(d[pos+n:], d[pos:old])
		appendLine(d[:pos], lead, eol, text, num)
	}
	w.dst = d
}

// appendLine appends an added line: eol first when lead (after a last
// line without line ending), then text, num unless num < 0, and eol: an
// added line always ends, so a parser that needs one is happy.
func appendLine(d []byte, lead bool, eol []byte, text string, num int) []byte {
	if lead {
		d = append(d, eol...)
	}
	d = append(d, text...)
	if num >= 0 {
		d = appendPort(d, uint16(num))
	}
	return append(d, eol...)
}
