package discovery

import (
	"fmt"
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// Source is where a public address came from.
type Source uint8

// The public-address sources.
const (
	SourceNone    Source = iota // nothing known
	SourceStatic                // configured by the user
	SourceMapping               // a gateway port mapping (UPnP, NAT-PMP, PCP)
	SourceGateway               // the gateway's reported WAN address, without a mapping
	SourceSTUN                  // a STUN server's view of the SIP socket
	SourceLocal                 // the UA's own address
)

var sourceNames = [...]string{"none", "static", "mapping", "gateway", "stun", "local"}

// String returns the source name, e.g. "stun".
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return fmt.Sprintf("source(%d)", s)
}

// MarshalText returns the name String gives.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Observations is everything a UA knows about its public address; every
// field may be empty.
type Observations struct {
	Local       netip.AddrPort `json:"local"`                     // the SIP socket's own address
	Static      netip.AddrPort `json:"static,omitzero"`           // configured public address
	Mapping     *Mapping       `json:"mapping,omitempty"`         // a gateway mapping of the SIP port
	Gateway     netip.Addr     `json:"gateway_external,omitzero"` // the WAN address the gateway reports
	GatewayFrom Protocol       `json:"gateway_from"`              // which protocol reported it
	STUN        netip.AddrPort `json:"stun,omitzero"`             // the mapped address a STUN server saw
	Errors      []string       `json:"errors,omitempty"`          // why a source gave nothing
}

// Choice is the address the UA should advertise in Contact and SDP, and why.
type Choice struct {
	Contact        netip.AddrPort `json:"contact"`         // put this in Contact (and, with the RTP port, in SDP c=)
	Source         Source         `json:"source"`          // where it came from
	Reason         string         `json:"reason"`          // why, in plain words
	BehindNAT      bool           `json:"behind_nat"`      // the UA's own address is not public
	CGNAT          bool           `json:"cgnat"`           // a carrier-grade NAT is on the path (ipaddr.CompareLayers)
	DoubleNAT      bool           `json:"double_nat"`      // another NAT (a CGNAT or any other) sits beyond the gateway (ipaddr.CompareLayers)
	Reachable      bool           `json:"reachable"`       // unsolicited packets to Contact reach the UA
	NeedsKeepalive bool           `json:"needs_keepalive"` // a NAT binding must be kept alive by sending
	Observations   Observations   `json:"observations"`    // what the choice was made from
}

// String returns "203.0.113.1:5060 (mapping): reason".
func (c Choice) String() string {
	return fmt.Sprintf("%s (%s): %s", c.Contact, c.Source, c.Reason)
}

// Reconcile decides from o which address goes into Contact and SDP. Static
// wins; then a gateway mapping whose external address is public and agrees
// with STUN; a gateway that reports a shared (RFC 6598) or private WAN
// address while STUN sees a public one means carrier-grade or double NAT:
// the router's mapping opens only the first NAT, so the STUN address is
// used and kept alive; then STUN; then the local address.
func Reconcile(o Observations) Choice {
	c := Choice{Observations: o}
	local := o.Local.Addr()
	c.BehindNAT = local.IsValid() && ipaddr.IsPrivate(local)
	gwExt := o.Gateway
	if o.Mapping != nil && o.Mapping.External.IsValid() {
		gwExt = o.Mapping.External.Addr()
	}
	layers := ipaddr.CompareLayers(gwExt, o.STUN.Addr()) // the one CGNAT/double-NAT rule
	c.CGNAT, c.DoubleNAT = layers.CGNAT, layers.DoubleNAT
	outer := "another NAT"
	if c.CGNAT {
		outer = "a carrier-grade NAT"
	}
	stunPublic := o.STUN.IsValid() && !ipaddr.IsPrivate(o.STUN.Addr())
	switch {
	case o.Static.IsValid():
		c.Contact, c.Source = o.Static, SourceStatic
		c.Reason = "configured public address " + o.Static.String()
		c.Reachable = true
		if stunPublic && o.STUN.Addr() != o.Static.Addr() {
			c.Reason += fmt.Sprintf("; note that a STUN server sees %s, so the configuration may be stale", o.STUN)
		}
	case o.Mapping != nil && o.Mapping.External == o.Local && local.IsValid() && !c.BehindNAT:
		// A pinhole in an IPv6 firewall: nothing is translated, the
		// gateway lets inbound packets to the UA's own address in.
		c.Contact, c.Source, c.Reachable = o.Local, SourceMapping, true
		c.Reason = fmt.Sprintf("the gateway's firewall has a pinhole for %s (%s); no NAT", o.Local, o.Mapping.Protocol)
	case local.IsValid() && !c.BehindNAT && local.IsGlobalUnicast() && (!o.STUN.IsValid() || o.STUN == o.Local):
		c.Contact, c.Source, c.Reachable = o.Local, SourceLocal, true
		c.Reason = "the UA's own address " + local.String() + " is public and no NAT was seen"
	case o.Mapping != nil && o.Mapping.External.IsValid() && !c.CGNAT && !c.DoubleNAT:
		c.Contact, c.Source, c.Reachable = o.Mapping.External, SourceMapping, true
		c.Reason = fmt.Sprintf("the gateway forwards %s to %s (%s mapping)", o.Mapping.External, o.Mapping.Internal, o.Mapping.Protocol)
		if stunPublic {
			c.Reason += "; a STUN server agrees on the address"
		}
	case (c.CGNAT || c.DoubleNAT) && stunPublic:
		c.Contact, c.Source, c.NeedsKeepalive = o.STUN, SourceSTUN, true
		c.Reason = fmt.Sprintf("the gateway's WAN address %s is %s but a STUN server sees %s: %s sits behind the gateway, so a router mapping alone cannot make the UA reachable; advertise the STUN address and keep its binding alive",
			gwExt, ipaddr.Classify(gwExt), o.STUN.Addr(), outer)
	case stunPublic:
		c.Contact, c.Source, c.NeedsKeepalive = o.STUN, SourceSTUN, true
		c.Reason = "a STUN server sees the SIP socket at " + o.STUN.String() + "; no gateway mapping, so keep the NAT binding alive"
	case o.Mapping != nil && o.Mapping.External.IsValid():
		c.Contact, c.Source, c.NeedsKeepalive = o.Mapping.External, SourceMapping, true
		c.Reason = fmt.Sprintf("only the gateway's mapping %s is known and its address is %s: %s is in the way and no STUN answer says where; calls from outside will likely fail",
			o.Mapping.External, ipaddr.Classify(gwExt), outer)
	case o.Local.IsValid():
		c.Contact, c.Source = o.Local, SourceLocal
		c.NeedsKeepalive = c.BehindNAT
		c.Reason = "no public address source answered; advertising the local address " + o.Local.String()
		if c.BehindNAT {
			c.Reason += ", which the far end can only reach through the registrar's NAT traversal (rport, received)"
		}
	default:
		c.Reason = "nothing known"
	}
	return c
}
