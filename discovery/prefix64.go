package discovery

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// pcpOptPrefix64 is the PREFIX64 option of RFC 7225 section 4: optional to
// process (128-191), so a PCP server that does not know it ignores it and
// answers without it (RFC 6887 section 7.3), as miniupnpd does.
const pcpOptPrefix64 = 129

// Prefix64 is one PREFIX64 option (RFC 7225): a NAT64 prefix the PCP
// server's NAT64 translates, and the IPv4 destinations it is for.
type Prefix64 struct {
	// Prefix is the NAT64 prefix (RFC 6052: 32, 40, 48, 56, 64 or 96 bits).
	Prefix netip.Prefix
	// IPv4 are the IPv4 prefixes reached through Prefix; empty means every
	// IPv4 address.
	IPv4 []netip.Prefix
}

// appendPrefix64Request appends the PREFIX64 option a client puts into a
// request to ask for the server's prefixes: Prefix64-Length and
// Suffix-Length zero, no prefix, no IPv4 list.
func appendPrefix64Request(b []byte) []byte {
	return append(b, pcpOptPrefix64, 0, 0, 4, 0, 0, 0, 0)
}

// parsePrefix64 decodes the body of a PREFIX64 option (RFC 7225 section
// 4): a 2-octet Prefix64-Length in octets (4, 5, 6, 7, 8 or 12) and the
// prefix, a 2-octet Suffix-Length and the suffix, then optionally a
// 2-octet IPv4 Prefix Count and as many pairs of a 2-octet prefix length
// and a 4-octet IPv4 prefix. The suffix must be zero: RFC 6052 section 2.2
// reserves it, and ipaddr.SynthesizeNAT64 writes zeros there.
func parsePrefix64(body []byte) (Prefix64, error) {
	var p Prefix64
	if len(body) < 4 {
		return p, fmt.Errorf("PREFIX64 option of %d bytes: %w", len(body), ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(body))
	switch n {
	case 4, 5, 6, 7, 8, 12:
	default:
		return p, fmt.Errorf("PREFIX64 Prefix64-Length %d (4, 5, 6, 7, 8 or 12 octets): %w", n, ErrMalformed)
	}
	rest := body[2:]
	if len(rest) < n+2 {
		return p, fmt.Errorf("PREFIX64 prefix of %d octets overruns the option: %w", n, ErrMalformed)
	}
	var a [16]byte
	copy(a[:], rest[:n])
	p.Prefix = netip.PrefixFrom(netip.AddrFrom16(a), n*8)
	if _, err := ipaddr.SynthesizeNAT64(p.Prefix, ipaddr.IPv4OnlyArpa[0]); err != nil {
		return Prefix64{}, fmt.Errorf("PREFIX64 %v: %w: %w", p.Prefix, ErrMalformed, err)
	}
	rest = rest[n:]
	suffix := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	room := 16 - n - 4 // after the prefix and the IPv4 address ...
	if n < 12 {
		room-- // ... and the u octet (bits 64-71)
	}
	if suffix > room || suffix > len(rest) {
		return Prefix64{}, fmt.Errorf("PREFIX64 Suffix-Length %d (at most %d after a /%d): %w", suffix, room, n*8, ErrMalformed)
	}
	for _, c := range rest[:suffix] {
		if c != 0 {
			return Prefix64{}, fmt.Errorf("PREFIX64 %v has a non-zero suffix, which RFC 6052 reserves: %w", p.Prefix, ErrUnsupported)
		}
	}
	rest = rest[suffix:]
	if len(rest) == 0 {
		return p, nil
	}
	if len(rest) < 2 {
		return Prefix64{}, fmt.Errorf("PREFIX64 IPv4 Prefix Count truncated: %w", ErrMalformed)
	}
	count := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if count == 0 || len(rest) != 6*count {
		return Prefix64{}, fmt.Errorf("PREFIX64 IPv4 prefix list of %d entries in %d bytes: %w", count, len(rest), ErrMalformed)
	}
	p.IPv4 = make([]netip.Prefix, 0, count)
	for ; len(rest) > 0; rest = rest[6:] {
		bits := int(binary.BigEndian.Uint16(rest))
		if bits > 32 {
			return Prefix64{}, fmt.Errorf("PREFIX64 IPv4 prefix length %d: %w", bits, ErrMalformed)
		}
		p.IPv4 = append(p.IPv4, netip.PrefixFrom(netip.AddrFrom4([4]byte(rest[2:6])), bits).Masked())
	}
	return p, nil
}
