package discovery_test

import (
	"fmt"
	"net/netip"

	"github.com/sipnat/sipnat/discovery"
)

// Reconcile, the one rule for the Contact: a gateway mapping is used only when the
// gateway faces the internet itself; behind a carrier-grade NAT (its
// external address 100.64.0.2) the STUN address goes into Contact.
func ExampleReconcile() {
	local := netip.MustParseAddrPort("192.168.1.10:5060")
	home := discovery.Reconcile(discovery.Observations{
		Local:   local,
		Mapping: &discovery.Mapping{Protocol: discovery.ProtoPCP, Internal: local, External: netip.MustParseAddrPort("203.0.113.1:5060")},
		STUN:    netip.MustParseAddrPort("203.0.113.1:5060"),
	})
	fmt.Println(home.Contact, home.Source, home.Reachable)
	cgnat := discovery.Reconcile(discovery.Observations{
		Local:   local,
		Mapping: &discovery.Mapping{Protocol: discovery.ProtoUPnP, Internal: local, External: netip.MustParseAddrPort("100.64.0.2:5060")},
		STUN:    netip.MustParseAddrPort("203.0.113.1:61000"),
	})
	fmt.Println(cgnat.Contact, cgnat.Source, cgnat.CGNAT, cgnat.NeedsKeepalive)
	// Output:
	// 203.0.113.1:5060 mapping true
	// 203.0.113.1:61000 stun true true
}
