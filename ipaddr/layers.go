package ipaddr

import (
	"fmt"
	"net/netip"
)

// Layers says what lies between a UA's gateway and the internet.
type Layers struct {
	// CGNAT: a carrier-grade NAT is on the path: the gateway's external
	// address, or the address a STUN server saw, is RFC 6598 shared space.
	CGNAT bool `json:"cgnat"`
	// DoubleNAT: more than one NAT is on the path: a CGNAT, a private
	// external address on the gateway, or a public one the internet does
	// not see (STUN sees another).
	DoubleNAT bool `json:"double_nat"`
	// Reason says why, in words; empty when neither was seen.
	Reason string `json:"reason,omitempty"`
}

// CompareLayers is sipnat's one rule for CGNAT and double NAT: it compares
// the gateway's external address (UPnP IGD, NAT-PMP or PCP; zero when no
// gateway answered) with the public address a STUN server saw (zero when
// none answered). nat.Result.CompareGateway and discovery.Reconcile use it.
// Without the gateway's address only a shared STUN address tells anything;
// a zero result then means "not seen", not "not there".
func CompareLayers(gateway, public netip.Addr) Layers {
	gateway, public = gateway.Unmap(), public.Unmap()
	var l Layers
	switch {
	case IsCGNAT(public):
		l.CGNAT, l.DoubleNAT = true, true
		l.Reason = fmt.Sprintf("the STUN server sees %s, a shared (RFC 6598) address: it sits inside a carrier-grade NAT", public)
	case !gateway.IsValid():
	case IsCGNAT(gateway):
		l.CGNAT, l.DoubleNAT = true, true
		l.Reason = fmt.Sprintf("the gateway's external address %s is shared (RFC 6598) space: a carrier-grade NAT is beyond it", gateway)
	case IsPrivate(gateway):
		l.DoubleNAT = true
		l.Reason = fmt.Sprintf("the gateway's external address %s is %s: another NAT is beyond it", gateway, Classify(gateway))
	case public.IsValid() && !IsPrivate(public) && gateway != public:
		l.DoubleNAT = true
		l.Reason = fmt.Sprintf("the gateway's external address %s is not the %s a STUN server sees: another NAT is beyond it", gateway, public)
	}
	return l
}
