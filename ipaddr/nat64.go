package ipaddr

import (
	"errors"
	"fmt"
	"net/netip"
)

// NAT64 prefixes and addresses of RFC 6052, RFC 8215 and RFC 7050.
var (
	// WellKnownNAT64 is the Well-Known Prefix 64:ff9b::/96 (RFC 6052
	// section 2.1) that NAT64 gateways translate when the operator picks no
	// network-specific prefix.
	WellKnownNAT64 = netip.MustParsePrefix("64:ff9b::/96")
	// LocalNAT64 is the local-use prefix 64:ff9b:1::/48 (RFC 8215).
	LocalNAT64 = netip.MustParsePrefix("64:ff9b:1::/48")
	// IPv4OnlyArpa are the well-known IPv4 addresses of ipv4only.arpa
	// (RFC 7050 section 2.2) from which a DNS64 synthesises the AAAA records
	// that reveal its NAT64 prefix.
	IPv4OnlyArpa = [2]netip.Addr{netip.AddrFrom4([4]byte{192, 0, 0, 170}), netip.AddrFrom4([4]byte{192, 0, 0, 171})}
)

// ErrNAT64Prefix is returned for a prefix that RFC 6052 does not allow for
// NAT64: IPv4, or not 32, 40, 48, 56, 64 or 96 bits long.
var ErrNAT64Prefix = errors.New("ipaddr: not an RFC 6052 NAT64 prefix")

// ErrFamily is returned for an address of the wrong family (an IPv6
// address where an IPv4 one is needed).
var ErrFamily = errors.New("ipaddr: wrong address family")

// checkNAT64 validates a NAT64 prefix.
func checkNAT64(p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
		return fmt.Errorf("%w: %v", ErrNAT64Prefix, p)
	}
	switch p.Bits() {
	case 32, 40, 48, 56, 64:
		return nil
	case 96:
		if p.Addr().As16()[8] != 0 { // RFC 6052 section 2.2: bits 64-71 are zero
			return fmt.Errorf("%w: %v has a non-zero u octet (bits 64-71)", ErrNAT64Prefix, p)
		}
		return nil
	}
	return fmt.Errorf("%w: %v has %d bits (32, 40, 48, 56, 64 or 96)", ErrNAT64Prefix, p, p.Bits())
}

// v4Slots are the byte positions of the four IPv4 octets in an IPv4-embedded
// IPv6 address for each prefix length (RFC 6052 section 2.2, Figure 1):
// byte 8 (bits 64-71, the "u" octet) is always skipped and zero.
func v4Slots(bits int) [4]int {
	switch bits {
	case 32:
		return [4]int{4, 5, 6, 7}
	case 40:
		return [4]int{5, 6, 7, 9}
	case 48:
		return [4]int{6, 7, 9, 10}
	case 56:
		return [4]int{7, 9, 10, 11}
	case 64:
		return [4]int{9, 10, 11, 12}
	}
	return [4]int{12, 13, 14, 15}
}

// SynthesizeNAT64 returns the IPv4-embedded IPv6 address of v4 under the
// NAT64 prefix (RFC 6052 section 2.2): what a DNS64 would answer and what
// an IPv6-only host sends to in order to reach v4 through the NAT64. The
// suffix and the u octet are zero. An IPv4-mapped v4 counts as IPv4.
func SynthesizeNAT64(prefix netip.Prefix, v4 netip.Addr) (netip.Addr, error) {
	if err := checkNAT64(prefix); err != nil {
		return netip.Addr{}, err
	}
	v4 = v4.Unmap()
	if !v4.Is4() {
		return netip.Addr{}, fmt.Errorf("synthesize %v: not an IPv4 address: %w", v4, ErrFamily)
	}
	b := prefix.Masked().Addr().As16()
	b[8] = 0
	for i := 9; i < 16; i++ {
		if i*8 >= prefix.Bits() {
			b[i] = 0
		}
	}
	four := v4.As4()
	for i, at := range v4Slots(prefix.Bits()) {
		b[at] = four[i]
	}
	return netip.AddrFrom16(b), nil
}

// ExtractNAT64 returns the IPv4 address embedded in a under the NAT64
// prefix (RFC 6052 section 2.3), and false if a is not in the prefix, the
// prefix is not a NAT64 prefix, or the u octet is not zero.
func ExtractNAT64(prefix netip.Prefix, a netip.Addr) (netip.Addr, bool) {
	if checkNAT64(prefix) != nil || !a.Is6() || a.Is4In6() || !prefix.Masked().Contains(a.WithZone("")) {
		return netip.Addr{}, false
	}
	b := a.As16()
	if prefix.Bits() < 96 && b[8] != 0 {
		return netip.Addr{}, false
	}
	var four [4]byte
	for i, at := range v4Slots(prefix.Bits()) {
		four[i] = b[at]
	}
	return netip.AddrFrom4(four), true
}

// NAT64PrefixesFrom returns the NAT64 prefixes that the AAAA records of
// ipv4only.arpa reveal (RFC 7050 section 3): for each address, the prefix
// at whose RFC 6052 position one of the well-known IPv4 addresses
// 192.0.0.170 or 192.0.0.171 is embedded, trying /96 first and then the
// shorter lengths. Addresses that embed neither are skipped, duplicates
// are dropped. An empty result means no NAT64 was found.
func NAT64PrefixesFrom(aaaa []netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range aaaa {
		if !a.Is6() || a.Is4In6() {
			continue
		}
		p, ok := nat64PrefixOf(a.WithZone(""))
		if !ok {
			continue
		}
		dup := false
		for _, q := range out {
			dup = dup || q == p
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}

// nat64PrefixOf finds the prefix length at which a embeds a well-known
// ipv4only.arpa address.
func nat64PrefixOf(a netip.Addr) (netip.Prefix, bool) {
	for _, bits := range [...]int{96, 64, 56, 48, 40, 32} {
		p := netip.PrefixFrom(a, bits).Masked()
		v4, ok := ExtractNAT64(p, a)
		if !ok || (v4 != IPv4OnlyArpa[0] && v4 != IPv4OnlyArpa[1]) {
			continue
		}
		// the address must be exactly the synthesis (zero suffix)
		if s, err := SynthesizeNAT64(p, v4); err == nil && s == a {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
