package ipaddr

import "net/netip"

// Translation is what happened to a host's IPv6 address on its way to a
// server outside, as the server's answer shows it.
type Translation string

// The IPv6 translations. A stateful firewall (RFC 6092) translates nothing;
// NPTv6 (RFC 6296) swaps the prefix and keeps the interface identifier (or
// changes one 16-bit word of it, its checksum-neutral adjustment); NAT66
// replaces the whole address, like an IPv4 NAT.
const (
	NoTranslation Translation = "no translation"
	NPTv6         Translation = "NPTv6"
	NAT66         Translation = "NAT66"
)

// TranslationOf tells how seen, the IPv6 address a server outside saw, came
// from the host's own addresses: NoTranslation when it is one of them;
// NPTv6 when it keeps the interface identifier (the low 64 bits) of one of
// them, or when it is a checksum-neutral mapping of one (RFC 6296 section
// 3.1: the one's-complement sums of both addresses are equal, the
// adjustment sitting in the subnet ID or the interface identifier); NAT66
// otherwise. The empty Translation means seen is not an IPv6 address.
func TranslationOf(host []netip.Addr, seen netip.Addr) Translation {
	seen = seen.WithZone("")
	if !seen.Is6() || seen.Is4In6() {
		return ""
	}
	for _, h := range host {
		if h.WithZone("") == seen {
			return NoTranslation
		}
	}
	s := seen.As16()
	for _, h := range host {
		if !h.Is6() || h.Is4In6() {
			continue
		}
		b := h.As16()
		if [8]byte(b[8:]) == [8]byte(s[8:]) || onesSum(b) == onesSum(s) {
			return NPTv6
		}
	}
	return NAT66
}

// onesSum is the 16-bit one's-complement sum of an address (RFC 1071), with
// 0xffff folded to 0, the two zeros of one's complement.
func onesSum(a [16]byte) uint16 {
	var sum uint32
	for i := 0; i < 16; i += 2 {
		sum += uint32(a[i])<<8 | uint32(a[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if sum == 0xffff {
		return 0
	}
	return uint16(sum)
}
