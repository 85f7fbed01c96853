package sdp

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// line is one SDP line of a body: body[start:end] is its text without line
// ending, body[end:next] the line ending ("\r\n", "\n" or "" at the end).
type line struct{ start, end, next int }

// nextLine returns the line that starts at i (i < len(b)).
func nextLine(b []byte, i int) line {
	j := bytes.IndexByte(b[i:], '\n')
	if j < 0 {
		return line{i, len(b), len(b)}
	}
	end := i + j
	if end > i && b[end-1] == '\r' {
		end--
	}
	return line{i, end, i + j + 1}
}

// span is a byte range [s, e) relative to the start of a line's value.
type span struct{ s, e int }

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// hasBlank reports whether b holds a space or tab.
func hasBlank(b []byte) bool { return bytes.IndexByte(b, ' ') >= 0 || bytes.IndexByte(b, '\t') >= 0 }

// parsePort parses a decimal port 0-65535.
func parsePort(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > 65535 {
		return 0, false
	}
	return uint16(v), true
}

// attrKey returns the key of an a= line's value (up to ':' or the end),
// as pion/sdp splits it.
func attrKey(v []byte) []byte {
	if i := bytes.IndexByte(v, ':'); i >= 0 {
		return v[:i]
	}
	return v
}

// attrIs reports whether the a= value v has the key key (v is key, or key
// followed by ':'), as bytes.Equal(attrKey(v), key) but without searching
// v for the colon.
func attrIs(v []byte, key string) bool {
	return len(v) >= len(key) && string(v[:len(key)]) == key && (len(v) == len(key) || v[len(key)] == ':')
}

// addrInfo is what the NAT tests and the rewrite need to know of an
// address token.
type addrInfo struct {
	ip   netip.Addr
	isIP bool
	priv bool // isIP and ipaddr.IsPrivate(ip)
	want bool // the rewrite replaces it (set by the rewriter only)
}

// classify parses the address token tok.
func classify(tok []byte) addrInfo {
	ip, ok := ipaddr.Parse(tok)
	return addrInfo{ip: ip, isIP: ok, priv: ok && ipaddr.IsPrivate(ip)}
}

// addrCache remembers the last address token classified (see
// rewriter.addr): a body names the same address in o=, c= and a=rtcp, so
// most tokens need one comparison instead of a parse and a
// classification. The zero value is ready (the empty token is no address).
type addrCache struct {
	text []byte
	info addrInfo
}

// tailFields finds the last two fields of v, which must have exactly n
// fields as splitFields counts them (n >= 2). It reads from the end, so
// the fields before the last two are only counted, not split.
func tailFields(v []byte, n int) (typ, addr span, ok bool) {
	return tailFieldsHint(v, n, nil)
}

// tailFieldsHint is tailFields given a likely last field: a non-empty
// hint without blanks (the last address read) that v ends with, after a
// blank, is the last field without a scan.
func tailFieldsHint(v []byte, n int, hint []byte) (typ, addr span, ok bool) {
	if n == 3 && len(hint) > 0 && len(v) == 7+len(hint) && isINIP(v) && string(v[7:]) == string(hint) {
		// "IN IP4 hint": a c= or a=rtcp address as most bodies write it.
		return span{3, 6}, span{7, len(v)}, true
	}
	e := len(v)
	s := e - len(hint)
	if len(hint) == 0 || s < 1 || !isBlank(v[s-1]) || string(v[s:]) != string(hint) {
		for e > 0 && isBlank(v[e-1]) {
			e--
		}
		s = e
		for s > 0 && !isBlank(v[s-1]) {
			s--
		}
	}
	var te, ts int // the address type field
	if s >= 7 && isINIP(v[s-7:]) {
		te, ts = s-1, s-4
	} else {
		te = s
		for te > 0 && isBlank(v[te-1]) {
			te--
		}
		if te == s { // one field only
			return typ, addr, false
		}
		ts = te
		for ts > 0 && !isBlank(v[ts-1]) {
			ts--
		}
	}
	// v[:ts] holds the first n-2 fields and the blank run after them:
	// n-2 blank runs (a leading blank run makes an empty first field).
	if blankRuns(v[:ts]) != n-2 {
		return typ, addr, false
	}
	return span{ts, te}, span{s, e}, true
}

// isINIP reports whether v starts with "IN IP4 " or "IN IP6 " (len(v) >=
// 8).
func isINIP(v []byte) bool {
	const (
		in4  = 'I' | 'N'<<8 | ' '<<16 | 'I'<<24 | 'P'<<32 | '4'<<40 | ' '<<48
		in6  = in4 ^ ('4'^'6')<<40
		mask = 1<<56 - 1
	)
	x := binary.LittleEndian.Uint64(v) & mask
	return x == in4 || x == in6
}

// blankRuns counts the runs of spaces and tabs in v, eight bytes at a
// time.
func blankRuns(v []byte) int {
	runs := 0
	if len(v) < 8 {
		blank := false
		for _, c := range v {
			b := isBlank(c)
			if b && !blank {
				runs++
			}
			blank = b
		}
		return runs
	}
	// A run starts at a blank byte whose predecessor is not blank; carry
	// is the blank flag of the byte before the word, at byte 0.
	var carry uint64
	i := 0
	for ; i+8 <= len(v); i += 8 {
		m := blankMask(binary.LittleEndian.Uint64(v[i:]))
		runs += bits.OnesCount64(m &^ (m<<8 | carry))
		carry = m >> 56
	}
	if r := len(v) - i; r > 0 {
		// The last 8 bytes, less the 8-r already counted, shifted out;
		// the zero bytes shifted in are not blank.
		m := blankMask(binary.LittleEndian.Uint64(v[len(v)-8:]) >> (8 * (8 - r)))
		runs += bits.OnesCount64(m &^ (m<<8 | carry))
	}
	return runs
}

// blankMask returns 0x80 in each byte of x that is a space or a tab, 0
// in the others.
func blankMask(x uint64) uint64 {
	const l7 = 0x7f7f7f7f7f7f7f7f
	t := x ^ 0x2020202020202020
	m := ^((t&l7 + l7) | t | l7)
	t = x ^ 0x0909090909090909
	return m | ^((t&l7 + l7) | t | l7)
}

// parseConnValue parses "IN IP4 addr" (the value of c=) and returns the
// spans of the address type and of the address, without a "/ttl" suffix.
// hint is as for tailFieldsHint.
func parseConnValue(v, hint []byte) (typ, addr span, ok bool) {
	if typ, addr, ok = tailFieldsHint(v, 3, hint); ok {
		for i := addr.s; i < addr.e; i++ {
			if v[i] == '/' {
				addr.e = i
				break
			}
		}
	}
	return typ, addr, ok
}

// parseOriginValue parses "user sess-id sess-version IN IP4 addr" and
// returns the spans of the address type and of the address.
func parseOriginValue(v, hint []byte) (typ, addr span, ok bool) {
	return tailFieldsHint(v, 6, hint)
}

// parseMediaPort returns the span of the port number in an m= value
// ("audio 49170/2 RTP/AVP 0": "49170") and the port. The value needs at
// least three fields.
func parseMediaPort(v []byte) (span, uint16, bool) {
	i := 0
	for i < len(v) && !isBlank(v[i]) {
		i++
	}
	for i < len(v) && isBlank(v[i]) {
		i++
	}
	p := span{i, i}
	for i < len(v) && !isBlank(v[i]) {
		if v[i] == '/' && p.e == p.s {
			p.e = i
		}
		i++
	}
	if p.e == p.s {
		p.e = i
	}
	f1 := i
	for i < len(v) && isBlank(v[i]) {
		i++
	}
	if i == len(v) || i == f1 { // no third field
		return span{}, 0, false
	}
	port, ok := parsePort(v[p.s:p.e])
	return p, port, ok
}

// rtcpValue is a parsed RFC 3605 a=rtcp value: "port [IN IP4 addr]".
type rtcpValue struct {
	port      span
	portNum   uint16
	hasAddr   bool
	typ, addr span // with hasAddr
}

// parseRTCPValue parses v as splitFields into four fields would (one field,
// or four with no blank in the fourth), without splitting the middle: the
// port's digits are read from the front and the address fields, as
// tailFieldsHint reads them, from the back. hint is as for tailFieldsHint.
func parseRTCPValue(v, hint []byte) (rtcpValue, bool) {
	var r rtcpValue
	i := 0
	for i < len(v) && i <= 5 && v[i]-'0' <= 9 {
		i++
	}
	if i == len(v) || isBlank(v[i]) {
		var ok bool
		if r.portNum, ok = parsePort(v[:i]); !ok {
			return rtcpValue{}, false
		}
	} else {
		return rtcpValue{}, false // a port with other characters
	}
	r.port = span{0, i}
	for i < len(v) && isBlank(v[i]) {
		i++
	}
	if i == len(v) {
		return r, true // the port alone, maybe with trailing blanks
	}
	typ, addr, ok := tailFieldsHint(v[i:], 3, hint)
	if !ok {
		return rtcpValue{}, false
	}
	r.hasAddr = true
	r.typ, r.addr = span{i + typ.s, i + typ.e}, span{i + addr.s, i + addr.e}
	return r, true
}

// kind returns the type letter of an SDP line ("c" for "c=..."), or 0.
func kind(l []byte) byte {
	if len(l) >= 2 && l[1] == '=' {
		return l[0]
	}
	return 0
}

var keyRTCP = []byte("rtcp")

// Check runs the NAT tests over an SDP body without rewriting it: the pass
// of AppendRewrite, writing nothing. It fails only when the body is not SDP
// (no leading v=) or an m= line has no port: o=, c= and a=rtcp lines it
// cannot read are not NAT problems a rewrite can fix, and are left alone.
// It does not allocate.
func Check(body []byte) (Result, error) { return CheckFrom(body, netip.Addr{}) }

// CheckFrom is Check for a body that arrived from src (the source address
// of the SIP message that carried it, as a proxy sees it): it also runs
// ConnDiffers, which fires for every c= line naming a unicast address other
// than src (Kamailio nat_uac_test 256). Hold addresses (0.0.0.0, ::),
// multicast and host names never fire. An invalid src runs Check alone. It
// does not allocate.
func CheckFrom(body []byte, src netip.Addr) (Result, error) {
	if err := checkBody(body); err != nil {
		return Result{}, err
	}
	var w rewriter
	w.body, w.check, w.dry = body, true, true
	w.src = src.Unmap()
	err := w.run()
	return w.res, err
}
