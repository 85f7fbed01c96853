package sdp

import (
	"bytes"
	"net/netip"

	"github.com/sipnat/sipnat/nat"
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

// splitFields splits v into at most len(out) fields separated by runs of
// spaces or tabs, as pion/sdp's lexer does (so a leading separator makes an
// empty first field, as in "o= 0 0 IN IP4 ..."). The last field takes the
// rest of v less trailing blanks. It returns the number of fields.
func splitFields(v []byte, out []span) int {
	n := 0
	for i := 0; n < len(out); {
		s := i
		if n == len(out)-1 {
			e := len(v)
			for e > s && isBlank(v[e-1]) {
				e--
			}
			out[n] = span{s, e}
			return n + 1
		}
		for i < len(v) && !isBlank(v[i]) {
			i++
		}
		out[n] = span{s, i}
		n++
		if i == len(v) {
			break
		}
		for i < len(v) && isBlank(v[i]) {
			i++
		}
		if i == len(v) {
			break
		}
	}
	return n
}

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

// addrField is a parsed "<addrtype> <address>" pair inside a line value.
type addrField struct {
	typ, addr span // addr covers the address only, not a "/ttl" suffix
	ip        netip.Addr
	isIP      bool
	priv      bool // isIP and nat.IsPrivate(ip), computed once
}

func parseAddrField(v []byte, typ, tok span, slash bool) addrField {
	a := addrField{typ: typ, addr: tok}
	if i := bytes.IndexByte(v[tok.s:tok.e], '/'); slash && i >= 0 {
		a.addr.e = tok.s + i
	}
	a.ip, a.isIP = parseIP(v[a.addr.s:a.addr.e])
	a.priv = a.isIP && nat.IsPrivate(a.ip)
	return a
}

// tailFields finds the last two fields of v, which must have exactly n
// fields as splitFields counts them (n >= 2). It reads from the end, so
// the fields before the last two are only counted, not split.
func tailFields(v []byte, n int) (typ, addr span, ok bool) {
	e := len(v)
	for e > 0 && isBlank(v[e-1]) {
		e--
	}
	s := e
	for s > 0 && !isBlank(v[s-1]) {
		s--
	}
	te := s
	for te > 0 && isBlank(v[te-1]) {
		te--
	}
	if te == s { // one field only
		return typ, addr, false
	}
	ts := te
	for ts > 0 && !isBlank(v[ts-1]) {
		ts--
	}
	// v[:ts] holds the first n-2 fields and the blank run after them:
	// n-2 blank runs (a leading blank run makes an empty first field).
	runs, blank := 0, false
	for _, c := range v[:ts] {
		b := c == ' ' || c == '\t'
		if b && !blank {
			runs++
		}
		blank = b
	}
	if runs != n-2 {
		return typ, addr, false
	}
	return span{ts, te}, span{s, e}, true
}

// parseConnValue parses "IN IP4 addr" (the value of c=).
func parseConnValue(v []byte) (addrField, bool) {
	typ, addr, ok := tailFields(v, 3)
	if !ok {
		return addrField{}, false
	}
	return parseAddrField(v, typ, addr, true), true
}

// parseOriginValue parses "user sess-id sess-version IN IP4 addr".
func parseOriginValue(v []byte) (addrField, bool) {
	typ, addr, ok := tailFields(v, 6)
	if !ok {
		return addrField{}, false
	}
	return parseAddrField(v, typ, addr, false), true
}

// parseMediaPort returns the span of the port number in an m= value
// ("audio 49170/2 RTP/AVP 0": "49170") and the port.
func parseMediaPort(v []byte) (span, uint16, bool) {
	var f [3]span
	if splitFields(v, f[:]) < 3 {
		return span{}, 0, false
	}
	p := f[1]
	if i := bytes.IndexByte(v[p.s:p.e], '/'); i >= 0 {
		p.e = p.s + i
	}
	port, ok := parsePort(v[p.s:p.e])
	return p, port, ok
}

// rtcpValue is a parsed RFC 3605 a=rtcp value: "port [IN IP4 addr]".
type rtcpValue struct {
	port    span
	portNum uint16
	hasAddr bool
	addr    addrField
}

func parseRTCPValue(v []byte) (rtcpValue, bool) {
	var f [4]span
	n := splitFields(v, f[:])
	if n != 1 && n != 4 {
		return rtcpValue{}, false
	}
	var r rtcpValue
	r.port = f[0]
	var ok bool
	if r.portNum, ok = parsePort(v[f[0].s:f[0].e]); !ok {
		return rtcpValue{}, false
	}
	if n == 4 {
		if hasBlank(v[f[3].s:f[3].e]) {
			return rtcpValue{}, false
		}
		r.hasAddr = true
		r.addr = parseAddrField(v, f[2], f[3], false)
	}
	return r, true
}

// kind returns the type letter of an SDP line ("c" for "c=..."), or 0.
func kind(l []byte) byte {
	if len(l) >= 2 && l[1] == '=' {
		return l[0]
	}
	return 0
}

var (
	keyRTCP     = []byte("rtcp")
	keyRTCPMux  = []byte("rtcp-mux")
	keyCand     = []byte("candidate")
	keyICEUfrag = []byte("ice-ufrag")
)

// scan runs the NAT tests over body, as AppendRewrite's pass does. It fails only when the body is not SDP
// (no leading v=) or an m= line has no port: o=, c= and a=rtcp lines it
// cannot read are not NAT problems it can fix, and are left alone. It is all of Check.
func scan(body []byte) (Result, error) {
	var r Result
	if err := checkBody(body); err != nil {
		return r, err
	}
	media := -1
	ice := false
	lineNo := 0
	for i := 0; i < len(body); {
		ln := nextLine(body, i)
		i = ln.next
		lineNo++
		l := body[ln.start:ln.end]
		k := kind(l)
		if k == 0 {
			continue
		}
		v := l[2:]
		switch k {
		case 'm':
			if _, _, ok := parseMediaPort(v); !ok {
				return r, &SyntaxError{Line: lineNo, Field: "m=", Reason: "want <media> <port> <proto> <fmt>"}
			}
			media++
		case 'o':
			if a, ok := parseOriginValue(v); ok && media < 0 && a.priv {
				r.add(Finding{Test: PrivateOrigin, Media: -1, Line: lineNo, Addr: a.ip})
			}
		case 'c':
			if a, ok := parseConnValue(v); ok && a.priv {
				t := PrivateSessionConn
				if media >= 0 {
					t = PrivateMediaConn
				}
				r.add(Finding{Test: t, Media: media, Line: lineNo, Addr: a.ip})
			}
		case 'a':
			key := attrKey(v)
			switch {
			case bytes.Equal(key, keyRTCP):
				if len(key) == len(v) {
					break
				}
				if rv, ok := parseRTCPValue(v[len(key)+1:]); ok && rv.hasAddr && rv.addr.priv {
					r.add(Finding{Test: PrivateRTCP, Media: media, Line: lineNo, Addr: rv.addr.ip})
				}
			case !ice && (bytes.Equal(key, keyCand) || bytes.Equal(key, keyICEUfrag)):
				ice = true
				r.add(Finding{Test: ICE, Media: media, Line: lineNo})
			}
		}
	}
	return r, nil
}

// Check runs the NAT tests over an SDP body without rewriting it. It does
// not allocate.
func Check(body []byte) (Result, error) { return scan(body) }
