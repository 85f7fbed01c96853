package sipmsg

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// URI is a scanned SIP or SIPS URI (RFC 3261 §19.1), or any other
// scheme:... URI with only Scheme set. Spans point into the message buffer.
type URI struct {
	All      Span // the whole URI
	Scheme   Span // "sip", "sips", "tel", ... without the colon
	User     Span // userinfo before '@' (may include ":password"), empty when absent
	HasUser  bool // an '@' was present (User may still be empty)
	Host     Span // host without IPv6 brackets
	HostPort Span // host[:port] as written, brackets included
	Port     int  // 0 when absent
	Params   Span // ";..." up to '?' or the end, empty when none
	Headers  Span // "?..." to the end, empty when none
	SIP      bool // sip: or sips:

	addr   netip.Addr // the host as an address, parsed once
	isAddr bool
}

// ParseURI scans the URI in s of b.
func ParseURI(b []byte, s Span) (URI, error) {
	var u URI
	err := parseURI(&u, b, s)
	return u, err
}

// sipColon is "sip:" as a little-endian word; OR-ing 0x20 into the three
// letters of "SIP:" in any case gives it.
var sipColon = load32s("sip:", 0)

func parseURI(u *URI, b []byte, s Span) error {
	*u = URI{}
	u.All = s
	i := s.Start
	if s.End-i > 4 && binary.LittleEndian.Uint32(b[i:])|0x202020 == sipColon { // the usual scheme
		i += 3
		u.Scheme = Span{s.Start, i}
		u.SIP = true
	} else {
		for i < s.End && b[i] != ':' {
			i++
		}
		if i == s.Start || i >= s.End {
			return perr(s.Start, "URI scheme", ErrMalformed)
		}
		u.Scheme = Span{s.Start, i}
		sch := u.Scheme.In(b)
		u.SIP = equalFold(sch, "sip") || equalFold(sch, "sips")
	}
	i++
	if !u.SIP {
		u.Host = Span{i, i}
		u.HostPort = u.Host
		u.Params = Span{s.End, s.End}
		u.Headers = u.Params
		return nil
	}
	// userinfo may hold '?' and '/' (RFC 3261 §25.1 user-unreserved) but
	// not '@', which neither parameters nor headers hold: the first '@'
	// ends it, and the headers start at the first '?' after it
	if at := bytes.IndexByte(b[i:s.End], '@'); at >= 0 {
		u.User = Span{i, i + at}
		u.HasUser = true
		i += at + 1
	}
	he := s.End
	if q := bytes.IndexByte(b[i:s.End], '?'); q >= 0 {
		he = i + q
		u.Headers = Span{he, s.End}
	} else {
		u.Headers = Span{s.End, s.End}
	}
	hs := i
	if i < he && b[i] == '[' {
		k := indexByte(b[:he], i, ']')
		if k < 0 {
			return perr(i, "URI host", ErrMalformed)
		}
		u.Host = Span{i + 1, k}
		i = k + 1
		u.addr, u.isAddr = ipaddr.ParseHost(u.Host.In(b))
	} else {
		// hostChar holds neither ':' nor ';', which end the host
		i, u.addr, u.isAddr = scanHost(b, i, he)
		if i < he && b[i] != ':' && b[i] != ';' {
			return perr(i, "URI host", ErrMalformed)
		}
		u.Host = Span{hs, i}
	}
	if u.Host.Len() == 0 {
		return perr(hs, "URI host", ErrMalformed)
	}
	if i < he && b[i] == ':' {
		ps := i + 1
		p, e, ok := scanPort(b, ps, he)
		if !ok {
			return perr(ps, "URI port", ErrMalformed)
		}
		i = e
		u.Port = p
	}
	u.HostPort = Span{hs, i}
	if i < he && b[i] != ';' {
		return perr(i, "URI", ErrMalformed)
	}
	if !validParams(b, i, he) {
		return perr(i, "URI parameters", ErrMalformed)
	}
	u.Params = Span{i, he}
	return nil
}

// Addr returns the host as an IP address when it is an IP literal (parsed
// with the URI; b is the message buffer, kept for symmetry with the spans).
func (u *URI) Addr(b []byte) (netip.Addr, bool) { return u.addr, u.isAddr }

// Param returns the value of URI parameter name.
func (u *URI) Param(b []byte, name string) (Param, bool) {
	return findParam(b, u.Params.Start, u.Params.End, name)
}

// NameAddr is a scanned name-addr or addr-spec with header parameters, as
// in Contact, From, To, Route, Record-Route and Path values.
type NameAddr struct {
	All       Span // the whole value, parameters included
	Display   Span // display name as written (maybe quoted), empty when none
	URI       Span // the URI (inside <> when Bracketed)
	Bracketed bool // the URI was written in <> (a name-addr, not an addr-spec)
	Params    Span // header parameters after the URI (";..."), empty when none
	Star      bool // Contact: *
}

// ParseNameAddr scans the name-addr / addr-spec value in s of b.
func ParseNameAddr(b []byte, s Span) (NameAddr, error) {
	var na NameAddr
	_, err := parseNameAddr(&na, b, s, false)
	return na, err
}

// parseNameAddr scans a name-addr or addr-spec with header parameters
// starting in s. With list set it stops at a comma that ends the value and
// returns the position after it; otherwise the value must fill s.
func parseNameAddr(na *NameAddr, b []byte, s Span, list bool) (int, error) {
	*na = NameAddr{}
	i := skipLWS(b, s.Start, s.End)
	na.All = Span{i, s.End}
	if i < s.End && b[i] == '*' {
		if j := skipLWS(b, i+1, s.End); j == s.End || (list && b[j] == ',') {
			na.Star = true
			na.URI = Span{i, i + 1}
			na.Params = Span{i + 1, i + 1}
			na.All.End = i + 1
			if j < s.End {
				return j + 1, nil
			}
			return s.End, nil
		}
	}
	lt := -1
	for j := i; j < s.End; j++ {
		c := b[j]
		if c == '"' {
			j = skipQuoted(b, j, s.End) - 1
			continue
		}
		if c == '<' {
			lt = j
			break
		}
		if c == ';' || c == ':' || c == ',' { // an addr-spec: the scheme came first
			break
		}
	}
	var ps int
	if lt >= 0 {
		na.Display = Span{i, trimRight(b, i, lt)}
		gt := bytes.IndexByte(b[lt:s.End], '>')
		if gt < 0 {
			return 0, perr(lt, "name-addr", ErrMalformed)
		}
		gt += lt
		na.URI = Span{lt + 1, gt}
		na.Bracketed = true
		ps = gt + 1
	} else {
		na.Display = Span{i, i}
		e := i
		for e < s.End && b[e] != ';' && !isLWS(b[e]) && b[e] != ',' {
			e++
		}
		na.URI = Span{i, e}
		ps = e
	}
	if na.URI.Len() == 0 {
		return 0, perr(na.URI.Start, "name-addr URI", ErrMalformed)
	}
	end, next, ok := scanParams(b, ps, s.End, list)
	if !ok {
		return 0, perr(ps, "header parameters", ErrMalformed)
	}
	na.Params = Span{ps, end}
	na.All.End = end
	return next, nil
}

// scanParams checks the parameter list starting at i, like validParams.
// With list set a comma after a parameter ends the list. It returns the
// end of the list (trimmed) and the position after the comma (or end).
func scanParams(b []byte, i, end int, list bool) (pend, next int, ok bool) {
	start := i
	var p Param
	for {
		pn := i
		if !readParam(&p, b, &pn, end) {
			if pn >= end {
				return trimRight(b, start, end), end, true
			}
			if list && b[pn] == ',' {
				return trimRight(b, start, pn), pn + 1, true
			}
			return 0, 0, false
		}
		if p.Name.Len() == 0 || (p.HasValue && p.Value.Len() == 0 && b[p.Value.Start-1] != '"') {
			return 0, 0, false
		}
		i = pn
	}
}

// Param returns header parameter name.
func (na *NameAddr) Param(b []byte, name string) (Param, bool) {
	return findParam(b, na.Params.Start, na.Params.End, name)
}

// hostChar holds the characters of a host name or IPv4 address as the
// scanner accepts them: token characters but '%'.
var hostChar = func() (t [256]bool) {
	t = tokenTable
	t['%'] = false
	return t
}()

// scanHost returns the end of the host at i (before end), the run of host
// characters, and the host as an address when it is one. An IPv4 address
// that makes up the whole run (no host character follows it) is read in
// one pass; any other run is found first and then parsed.
func scanHost(b []byte, i, end int) (int, netip.Addr, bool) {
	if a, n := ipaddr.LeadingIPv4(b[i:end]); n > 0 && (i+n == end || hostSet[b[i+n]] == 0) {
		return i + n, a, true
	}
	e := runEnd(&hostSet, b, i, end)
	a, ok := ipaddr.ParseHost(b[i:e])
	return e, a, ok
}

// scanPort reads the decimal port at i (before end): its value, the end of
// its digits and false when there are none, more than ten or the value is
// above 65535 (parseUint over the run of digits, in one pass).
func scanPort(b []byte, i, end int) (port, next int, ok bool) {
	start := i
	n := 0
	for i < end && isDigit(b[i]) {
		// n wraps only past ten digits, which are refused anyway
		n = n*10 + int(b[i]-'0')
		i++
	}
	return n, i, i > start && i-start <= 10 && n <= 65535
}
