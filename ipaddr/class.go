package ipaddr

import "net/netip"

// Class says which kind of address range an IP address belongs to. It is
// the one table of special-purpose ranges in sipnat: every other package
// asks it instead of keeping its own.
type Class uint8

// The address classes, from the most specific range that holds the address.
const (
	ClassInvalid       Class = iota // the zero netip.Addr
	ClassPublic                     // globally routable as far as sipnat knows
	ClassPrivate                    // RFC 1918 (10/8, 172.16/12, 192.168/16), IPv6 ULA fc00::/7
	ClassShared                     // RFC 6598 shared address space 100.64.0.0/10 (carrier-grade NAT)
	ClassLoopback                   // 127.0.0.0/8, ::1
	ClassLinkLocal                  // 169.254.0.0/16, fe80::/10
	ClassUnspecified                // 0.0.0.0, :: (SDP hold, "any")
	ClassMulticast                  // 224.0.0.0/4, ff00::/8
	ClassDocumentation              // RFC 5737 and RFC 3849 documentation ranges
)

var classNames = [...]string{
	ClassInvalid:       "invalid",
	ClassPublic:        "public",
	ClassPrivate:       "private",
	ClassShared:        "shared (RFC 6598)",
	ClassLoopback:      "loopback",
	ClassLinkLocal:     "link-local",
	ClassUnspecified:   "unspecified",
	ClassMulticast:     "multicast",
	ClassDocumentation: "documentation",
}

// String returns a short lower-case name of the class.
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

var (
	shared4 = netip.MustParsePrefix("100.64.0.0/10")
	docs    = [...]netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
)

// Classify returns the class of a. IPv4-mapped IPv6 addresses are classified
// as the IPv4 address they carry. Documentation ranges are their own class
// and count as public for NAT decisions: test labs use them as "the internet".
func Classify(a netip.Addr) Class {
	if !a.IsValid() {
		return ClassInvalid
	}
	a = a.Unmap()
	if a.Is4() {
		return classify4(a.As4())
	}
	return classifyTable(a)
}

// classify4 is Classify for IPv4 by its first octets: the hot paths of
// sipmsg and sdp classify an address per Via, Contact and c= line. The
// ranges are those of classifyTable, which the tests hold it to.
func classify4(b [4]byte) Class {
	switch b[0] {
	case 0:
		if b == [4]byte{} {
			return ClassUnspecified
		}
	case 10:
		return ClassPrivate
	case 100:
		if b[1]&0xc0 == 64 {
			return ClassShared
		}
	case 127:
		return ClassLoopback
	case 169:
		if b[1] == 254 {
			return ClassLinkLocal
		}
	case 172:
		if b[1]&0xf0 == 16 {
			return ClassPrivate
		}
	case 192:
		if b[1] == 168 {
			return ClassPrivate
		}
		if b[1] == 0 && b[2] == 2 {
			return ClassDocumentation
		}
	case 198:
		if b[1] == 51 && b[2] == 100 {
			return ClassDocumentation
		}
	case 203:
		if b[1] == 0 && b[2] == 113 {
			return ClassDocumentation
		}
	}
	if b[0]&0xf0 == 224 {
		if b[0] == 224 && b[1] == 0 && b[2] == 0 {
			return ClassLinkLocal // 224.0.0.0/24, link-local multicast
		}
		return ClassMulticast
	}
	return ClassPublic
}

// classifyTable classifies an unmapped valid address by netip's predicates
// and the range table.
func classifyTable(a netip.Addr) Class {
	switch {
	case a.IsUnspecified():
		return ClassUnspecified
	case a.IsLoopback():
		return ClassLoopback
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return ClassLinkLocal
	case a.IsMulticast():
		return ClassMulticast
	case a.IsPrivate():
		return ClassPrivate
	case a.Is4() && shared4.Contains(a):
		return ClassShared
	}
	for _, p := range docs {
		if p.Contains(a) {
			return ClassDocumentation
		}
	}
	return ClassPublic
}

// IsPrivate reports whether a is an address that cannot be reached from the
// public internet and so marks a UA as behind NAT when it appears in SIP or
// SDP: RFC 1918, IPv6 ULA, RFC 6598 shared space, loopback and link-local.
// This is the range set of Kamailio's nat_uac_test "private address" bits.
// The unspecified address (SDP hold) is not private.
func IsPrivate(a netip.Addr) bool {
	switch Classify(a) {
	case ClassPrivate, ClassShared, ClassLoopback, ClassLinkLocal:
		return true
	}
	return false
}

// IsGlobal reports whether a is reachable from the public internet as far
// as sipnat knows: a public address, or one in the documentation ranges
// that test labs use as "the internet" (ClassPublic, ClassDocumentation).
// Private, shared, loopback, link-local, unspecified and multicast
// addresses are not global.
func IsGlobal(a netip.Addr) bool {
	switch Classify(a) {
	case ClassPublic, ClassDocumentation:
		return true
	}
	return false
}

// IsCGNAT reports whether a is in the RFC 6598 shared address space
// 100.64.0.0/10 that carrier-grade NATs use between subscriber and carrier.
func IsCGNAT(a netip.Addr) bool { return Classify(a) == ClassShared }
