package sipmsg

import (
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// Via is a scanned via-parm (RFC 3261 §20.42, RFC 3581).
type Via struct {
	All       Span  // the whole via-parm
	Transport Span  // "UDP", "TCP", ...
	SentBy    Span  // host[:port] as written
	Host      Span  // host without IPv6 brackets
	Port      int   // 0 when absent
	Params    Span  // ";..." to the end of the value, empty when none
	Received  Param // received=, valid when HasRecv
	Rport     Param // rport, valid when HasRport; HasValue false for a bare ";rport"
	Branch    Param // branch=, valid when HasBranch
	HasRecv   bool  // a received parameter is present
	HasRport  bool  // an rport parameter is present
	HasBranch bool  // a branch parameter is present

	addr   netip.Addr // the host as an address, parsed once
	isAddr bool
}

// ParseVia scans the via-parm in s of b (one value of a Via header, see
// Message.Values and Message.TopVia).
func ParseVia(b []byte, s Span) (Via, error) {
	var v Via
	_, err := parseVia(&v, b, s, false)
	return v, err
}

// parseVia scans a via-parm starting in s. With list set it stops at a
// comma that ends the value and returns the position after it; otherwise
// the value must fill s.
func parseVia(v *Via, b []byte, s Span, list bool) (int, error) {
	// reset what is not always written below (cheaper than zeroing all)
	v.Port, v.HasRecv, v.HasRport, v.HasBranch = 0, false, false, false
	v.Received = Param{}
	v.Rport = Param{}
	v.Branch = Param{}
	i := skipLWS(b, s.Start, s.End)
	v.All = Span{i, s.End}
	next := s.End
	// sent-protocol: name LWS? "/" LWS? version LWS? "/" LWS? transport
	part := 0
	if i+8 <= s.End && load64(b, i)|0x202020 == sip20 { // the usual form, any case
		i += 8
		part = 2
	}
	for ; part < 3; part++ {
		ts := i
		for i < s.End && isToken(b[i]) {
			i++
		}
		if i == ts {
			return 0, perr(i, "Via protocol", ErrMalformed)
		}
		if part == 2 {
			v.Transport = Span{ts, i}
			break
		}
		i = skipLWS(b, i, s.End)
		if i >= s.End || b[i] != '/' {
			return 0, perr(i, "Via protocol", ErrMalformed)
		}
		i = skipLWS(b, i+1, s.End)
	}
	j := skipLWS(b, i, s.End)
	if j == i || j >= s.End {
		return 0, perr(j, "Via sent-by", ErrMalformed)
	}
	i = j
	hs := i
	if b[i] == '[' {
		k := indexByte(b[:s.End], i, ']')
		if k < 0 {
			return 0, perr(i, "Via sent-by", ErrMalformed)
		}
		v.Host = Span{i + 1, k}
		i = k + 1
		v.addr, v.isAddr = ipaddr.ParseHost(v.Host.In(b))
	} else {
		i, v.addr, v.isAddr = scanHost(b, i, s.End)
		v.Host = Span{hs, i}
	}
	if v.Host.Len() == 0 {
		return 0, perr(hs, "Via sent-by", ErrMalformed)
	}
	k := skipLWS(b, i, s.End)
	if k < s.End && b[k] == ':' {
		k = skipLWS(b, k+1, s.End)
		ps := k
		p, e, ok := scanPort(b, ps, s.End)
		if !ok {
			return 0, perr(ps, "Via port", ErrMalformed)
		}
		k = e
		v.Port = p
		i = k
	}
	v.SentBy = Span{hs, i}
	v.Params = Span{i, s.End}
	var p Param
	for {
		pn := i
		if !readParam(&p, b, &pn, s.End) {
			if pn < s.End {
				if list && b[pn] == ',' {
					v.All.End = trimRight(b, v.All.Start, pn)
					next = pn + 1
					break
				}
				return 0, perr(pn, "Via parameters", ErrMalformed)
			}
			break
		}
		if p.Name.Len() == 0 {
			return 0, perr(p.Name.Start, "Via parameters", ErrMalformed)
		}
		name := p.Name.In(b)
		switch len(name) {
		case 8:
			if equalLowerName(name, "received") {
				v.Received.set(&p)
				v.HasRecv = true
			}
		case 5:
			if equalLowerName(name, "rport") {
				v.Rport.set(&p)
				v.HasRport = true
			}
		case 6:
			if equalLowerName(name, "branch") {
				v.Branch.set(&p)
				v.HasBranch = true
			}
		}
		i = pn
	}
	v.Params.End = v.All.End
	if v.Params.Start >= v.Params.End {
		v.Params = Span{v.All.End, v.All.End}
	}
	return next, nil
}

// HostAddr returns the sent-by host as an IP address when it is one (parsed
// with the Via; b is the message buffer, kept for symmetry with the spans).
func (v *Via) HostAddr(b []byte) (netip.Addr, bool) { return v.addr, v.isAddr }

// PortOrDefault returns the sent-by port, or the transport's default
// (5061 for TLS, 5060 otherwise) when absent.
func (v *Via) PortOrDefault(b []byte) int {
	if v.Port != 0 {
		return v.Port
	}
	if t := v.Transport.In(b); equalFold(t, "TLS") || equalFold(t, "WSS") {
		return 5061
	}
	return 5060
}

// ReceivedAddr returns the received= parameter as an address.
func (v *Via) ReceivedAddr(b []byte) (netip.Addr, bool) {
	if !v.HasRecv {
		return netip.Addr{}, false
	}
	return ipaddr.ParseHost(v.Received.Value.In(b))
}

// RportValue returns the rport= value; false when absent or bare.
func (v *Via) RportValue(b []byte) (int, bool) {
	if !v.HasRport || !v.Rport.HasValue {
		return 0, false
	}
	return parseUint(v.Rport.Value.In(b), 65535)
}

// SentByAddr returns the sent-by host and port (the transport's default
// when absent) as an address, an IPv4-mapped host in its IPv4 form; false
// when the host is not an IP address.
func (v *Via) SentByAddr(b []byte) (netip.AddrPort, bool) {
	a, ok := v.HostAddr(b)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(v.PortOrDefault(b))), true
}

// SourceAddr returns the address a Via's sender was seen at: received= (or
// the sent-by host) and rport= (or the sent-by port); false when that is
// not an IP address and a port.
func (v *Via) SourceAddr(b []byte) (netip.AddrPort, bool) {
	a, ok := v.ReceivedAddr(b)
	if !ok {
		if a, ok = v.HostAddr(b); !ok {
			return netip.AddrPort{}, false
		}
	}
	port, ok := v.RportValue(b)
	if !ok {
		port = v.PortOrDefault(b)
	}
	if port == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}

// ParseTopVia scans the first Via value of m.
func (m *Message) ParseTopVia() (Via, error) {
	v, err := m.topVia()
	return *v, err
}

// topVia returns the top Via, parsed once per Parse.
func (m *Message) topVia() (*Via, error) {
	if m.viaState == cacheNone {
		i := m.Index(HdrVia)
		if i < 0 {
			m.via, m.viaErr = Via{}, perr(0, "Via", ErrNoHeader)
		} else {
			_, m.viaErr = parseVia(&m.via, m.buf, m.hdrs[i].value, true)
		}
		m.viaState = cacheOK
	}
	return &m.via, m.viaErr
}

// sip20 is "sip/2.0/" as a little-endian word: OR-ing 0x20 into the first
// three bytes (the letters) of "SIP/2.0/" in any case gives it.
var sip20 = load64s("sip/2.0/", 0)
