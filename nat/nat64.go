package nat

import (
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

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
