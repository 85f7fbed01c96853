// Package ipaddr is sipnat's one table of IP address classes: which
// special-purpose range an address belongs to (RFC 1918 private, RFC 6598
// shared space used by carrier-grade NATs, loopback, link-local,
// documentation, ...), and the NAT tests built on it (IsPrivate, IsCGNAT,
// IsGlobal).
//
// It depends on nothing but the standard library, so the SIP and SDP
// rewriting packages, which every proxy links, pull in no STUN, DTLS or
// other heavy module by asking it. Every other sipnat package asks this
// table instead of keeping its own ranges.
//
// It also holds the NAT64 address arithmetic (RFC 6052): the IPv4-embedded
// IPv6 address an IPv6-only host sends to in order to reach an IPv4 literal
// through a NAT64 (SynthesizeNAT64), the reverse (ExtractNAT64), and the
// prefix that a DNS64's answer for ipv4only.arpa reveals (NAT64PrefixesFrom,
// RFC 7050); discovery.DetectNAT64 asks the resolver and the PCP server.
//
// RFCs: 1918 (private IPv4), 4193 (IPv6 ULA), 6598 (shared address space),
// 5737 and 3849 (documentation), 3927 and 4291 (link-local), 6052, 7050 and
// 8215 (NAT64 prefixes and addresses).
//
// # Usage
//
//	if ipaddr.IsPrivate(contact.Addr()) {
//		// the UA is behind NAT: rewrite its Contact
//	}
//	fmt.Println(ipaddr.Classify(netip.MustParseAddr("100.64.0.2"))) // shared (RFC 6598)
//
// All functions are pure and safe for concurrent use.
package ipaddr
