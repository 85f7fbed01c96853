package ipaddr

import "net/netip"

// Parse parses an IPv4 dotted quad or an IPv6 address (RFC 4291 text form,
// with "::" and an embedded IPv4 tail, without zone) from b without
// allocating: it accepts what netip.ParseAddr accepts, zones aside.
// netip.ParseAddr needs a string, and converting a slice of a SIP message or
// SDP line to one would allocate on every call. It returns false for
// anything else, host names included, so a caller can tell an address from
// a name with one call.
func Parse(b []byte) (netip.Addr, bool) { return parse(b, false) }

// parse is Parse, and with brackets ParseHost: one function behind both, so
// each is a call to it after inlining.
func parse(b []byte, brackets bool) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	switch c := b[0]; {
	case c == '[' && brackets:
		if len(b) < 2 || b[len(b)-1] != ']' {
			return netip.Addr{}, false
		}
		return parseIPv6(b[1 : len(b)-1])
	case c-'0' <= 9:
		// Most addresses in SIP and SDP are IPv4: read one at once, and
		// fall back to IPv6 (which may start with a digit) only if
		// that fails.
		if v4, ok := parseIPv4(b); ok {
			return netip.AddrFrom4(v4), true
		}
	}
	// An IPv6 address has a colon within its first five bytes; a host
	// name that starts with a letter has neither form.
	for i := 0; i < len(b) && i < 5; i++ {
		if b[i] == ':' {
			return parseIPv6(b)
		}
	}
	return netip.Addr{}, false
}

// parseIPv4 parses exactly four decimal octets 0-255 separated by dots, with
// no leading zeros (as netip.ParseAddr).
func parseIPv4(b []byte) ([4]byte, bool) {
	if len(b) < 7 || len(b) > 15 {
		return [4]byte{}, false
	}
	out, n := leadingIPv4(b)
	return out, n == len(b)
}

// LeadingIPv4 returns the IPv4 address (netip.ParseAddr's dotted quad: no
// leading zeros) that b starts with and the length of its text, or 0 when b
// does not start with one. Whatever follows is not looked at: the caller
// decides whether the address ends there (a SIP host, followed by ':', ';'
// or '>', is read without first finding its end).
func LeadingIPv4(b []byte) (netip.Addr, int) {
	out, n := leadingIPv4(b)
	if n == 0 {
		return netip.Addr{}, 0
	}
	return netip.AddrFrom4(out), n
}

// leadingIPv4 is LeadingIPv4 as four bytes.
func leadingIPv4(b []byte) ([4]byte, int) {
	var out [4]byte
	i := 0
	for k := 0; k < 4; k++ {
		if k > 0 {
			if i == len(b) || b[i] != '.' {
				return out, 0
			}
			i++
		}
		if i == len(b) || b[i]-'0' > 9 {
			return out, 0
		}
		v := uint(b[i] - '0')
		i++
		if i < len(b) && b[i]-'0' <= 9 {
			if v == 0 { // leading zero
				return out, 0
			}
			v = v*10 + uint(b[i]-'0')
			i++
			if i < len(b) && b[i]-'0' <= 9 {
				v = v*10 + uint(b[i]-'0')
				i++
				if v > 255 {
					return out, 0
				}
			}
		}
		out[k] = byte(v)
	}
	return out, i
}

// ParseHost parses the host part of a SIP URI or Via sent-by (RFC 3261
// §25.1): Parse's forms, and an IPv6 reference in brackets ("[2001:db8::1]").
// It returns false for host names.
func ParseHost(b []byte) (netip.Addr, bool) { return parse(b, true) }

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// parseIPv6 parses the textual IPv6 forms netip.ParseAddr accepts, except
// zones (a zone has no meaning in SIP or SDP).
func parseIPv6(b []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // byte index in ip where "::" stands
	i := 0         // next byte of ip to fill
	pos := 0
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		pos = 2
		if pos == len(b) {
			return netip.AddrFrom16(ip), true
		}
	}
	for i < 16 {
		// One group of 1-4 hex digits, or an IPv4 tail.
		start := pos
		v := 0
		for pos < len(b) && pos-start < 5 {
			h := hexVal(b[pos])
			if h < 0 {
				break
			}
			v = v<<4 | h
			pos++
		}
		n := pos - start
		if n == 0 || n > 4 {
			return netip.Addr{}, false
		}
		if pos < len(b) && b[pos] == '.' {
			// IPv4 tail: must fit in the last 4 bytes.
			if i > 12 {
				return netip.Addr{}, false
			}
			v4, ok := parseIPv4(b[start:])
			if !ok {
				return netip.Addr{}, false
			}
			copy(ip[i:], v4[:])
			i += 4
			pos = len(b)
			break
		}
		ip[i] = byte(v >> 8)
		ip[i+1] = byte(v)
		i += 2
		if pos == len(b) {
			break
		}
		if b[pos] != ':' {
			return netip.Addr{}, false
		}
		pos++
		if pos < len(b) && b[pos] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			pos++
			if pos == len(b) {
				break
			}
		} else if pos == len(b) {
			return netip.Addr{}, false // trailing single colon
		}
	}
	if pos != len(b) {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		for j := ellipsis; j < ellipsis+n; j++ {
			ip[j] = 0
		}
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group
	}
	return netip.AddrFrom16(ip), true
}
