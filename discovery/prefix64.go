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
// request to ask for the server's prefixes: the option with no body
// (Option-Length 0). A response's PREFIX64 always carries at least the
// Prefix64-Length and the 12 octets of Prefix64 and Suffix, so an empty one
// that comes back is the request's own, echoed.
func appendPrefix64Request(b []byte) []byte {
	return append(b, pcpOptPrefix64, 0, 0, 0)
}

// prefix64Fixed is the part of a PREFIX64 body every option has: the
// 2-octet Prefix64-Length and the Prefix64 and Suffix fields, which fill
// 12 octets together (the IPv6 address less its embedded IPv4 address).
const prefix64Fixed = 2 + 12

// parsePrefix64 decodes the body of a PREFIX64 option (RFC 7225 section
// 4, laid out as Wireshark's PCP dissector reads it):
//
//	Prefix64-Length   2 octets: 4, 5, 6, 7, 8 or 12 (RFC 6052's lengths in octets)
//	Prefix64          Prefix64-Length octets
//	Suffix            12 - Prefix64-Length octets
//	IPv4 Prefix Count 2 octets, optional; then that many of
//	  IPv4 Prefix Length 2 octets
//	  IPv4 Address       4 octets
//
// The Suffix must be zero: RFC 6052 section 2.2 reserves the u octet and
// the suffix, and ipaddr.SynthesizeNAT64 writes zeros there.
func parsePrefix64(body []byte) (Prefix64, error) {
	var p Prefix64
	if len(body) < prefix64Fixed {
		return p, fmt.Errorf("PREFIX64 option of %d bytes (at least %d): %w", len(body), prefix64Fixed, ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(body))
	switch n {
	case 4, 5, 6, 7, 8, 12:
	default:
		return p, fmt.Errorf("PREFIX64 Prefix64-Length %d (4, 5, 6, 7, 8 or 12 octets): %w", n, ErrMalformed)
	}
	var a [16]byte
	copy(a[:], body[2:2+n])
	p.Prefix = netip.PrefixFrom(netip.AddrFrom16(a), n*8)
	if _, err := ipaddr.SynthesizeNAT64(p.Prefix, ipaddr.IPv4OnlyArpa[0]); err != nil {
		return Prefix64{}, fmt.Errorf("PREFIX64 %v: %w: %w", p.Prefix, ErrMalformed, err)
	}
	for _, c := range body[2+n : prefix64Fixed] {
		if c != 0 {
			return Prefix64{}, fmt.Errorf("PREFIX64 %v has a non-zero suffix, which RFC 6052 reserves: %w", p.Prefix, ErrUnsupported)
		}
	}
	rest := body[prefix64Fixed:]
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
