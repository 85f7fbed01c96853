package nat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// ErrNoNAT64 is returned by DetectNAT64 when the network's resolver shows no
// NAT64: ipv4only.arpa has no AAAA record that embeds its IPv4 addresses.
var ErrNoNAT64 = errors.New("nat: no NAT64 prefix (ipv4only.arpa has no synthesised AAAA)")

// ipv4OnlyName is the name whose AAAA records a DNS64 synthesises (RFC 7050).
const ipv4OnlyName = "ipv4only.arpa"

// DetectNAT64 discovers the NAT64 prefixes of the network (RFC 7050): it
// asks r (nil: net.DefaultResolver, which uses the system's DNS servers,
// where a DNS64 sits on an IPv6-only network) for the AAAA records of
// ipv4only.arpa and returns the prefixes in which they embed 192.0.0.170
// or 192.0.0.171 (ipaddr.NAT64PrefixesFrom). Without a DNS64 the answer
// has no AAAA record and the error is ErrNoNAT64.
//
// An IPv6-only UA uses the prefix to reach IPv4 peers whose literals it
// finds in SIP and SDP (ipaddr.SynthesizeNAT64), and to discover its public
// IPv4 address through the NAT64 (DiscoverConfig.NAT64): that IPv4 address,
// not its own IPv6 one, is what it writes into Contact and SDP for an
// IPv4-only far side.
func DetectNAT64(ctx context.Context, r *net.Resolver) ([]netip.Prefix, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip6", ipv4OnlyName)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, fmt.Errorf("detect NAT64: %w", ErrNoNAT64)
		}
		return nil, fmt.Errorf("detect NAT64: look up %s AAAA: %w", ipv4OnlyName, err)
	}
	prefixes := ipaddr.NAT64PrefixesFrom(addrs)
	if len(prefixes) == 0 {
		return nil, fmt.Errorf("detect NAT64: %w: answer %v", ErrNoNAT64, addrs)
	}
	return prefixes, nil
}

// reach returns the address the tested socket sends to for ap: ap itself,
// or, with DiscoverConfig.NAT64 set, the synthesised IPv6 address of an
// IPv4 ap (a server's alternate address, the public mapping for the hairpin
// test), which an IPv6-only host reaches only through the NAT64.
func (d *discoverer) reach(ap netip.AddrPort) netip.AddrPort {
	if !d.cfg.NAT64.IsValid() || !ap.Addr().Unmap().Is4() {
		return ap
	}
	a, err := ipaddr.SynthesizeNAT64(d.cfg.NAT64, ap.Addr())
	if err != nil {
		return ap
	}
	return netip.AddrPortFrom(a, ap.Port())
}
