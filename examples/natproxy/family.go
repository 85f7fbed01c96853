package main

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/rtpengine/sipedge"
	"github.com/sipnat/sipnat/sipmsg"
)

// family is a dual-stack proxy's socket and address in its second family.
type family struct {
	conn net.PacketConn
	self netip.AddrPort // in Via and Record-Route towards UAs of this family
}

// setFamilies checks a dual-stack config and writes the Record-Route
// values: one URI per family, and the double values that join them.
func (p *Proxy) setFamilies(cfg Config) error {
	if cfg.AltConn != nil || cfg.AltSelf.IsValid() {
		switch {
		case cfg.AltConn == nil || !cfg.AltSelf.IsValid() || cfg.AltSelf.Port() == 0:
			return fmt.Errorf("natproxy: AltConn and AltSelf go together")
		case agent.FamilyOf(cfg.AltSelf.Addr()) == agent.FamilyOf(cfg.Self.Addr()):
			return fmt.Errorf("natproxy: AltSelf %s is in Self's family (%s)", cfg.AltSelf, cfg.Self)
		case agent.FamilyOf(cfg.Self.Addr()) != agent.FamilyOf(cfg.Upstream.Addr()):
			return fmt.Errorf("natproxy: Self %s must be in Upstream's family (%s): Via, Path and Record-Route towards upstream name it", cfg.Self, cfg.Upstream)
		}
		if _, ok := cfg.AltConn.LocalAddr().(*net.UDPAddr); !ok {
			return fmt.Errorf("natproxy: AltConn is not a UDP socket")
		}
		p.alt = family{conn: cfg.AltConn, self: cfg.AltSelf} // the edge sends from the socket of each UA's family (Edge.FlowFor)
	}
	for nat := range 2 {
		p.rrOne[0][nat] = sipedge.AppendRecordRoute(nil, cfg.Self, nat == 1)
		if p.alt.conn == nil {
			continue
		}
		p.rrOne[1][nat] = sipedge.AppendRecordRoute(nil, cfg.AltSelf, nat == 1)
		for first := range 2 {
			p.rrTwo[first][nat] = append(append(append([]byte(nil), p.rrOne[first][nat]...), ", "...), p.rrOne[1-first][nat]...)
		}
	}
	return nil
}

// rrValue is the Record-Route value for a request from a hop at prev to
// one at next: the proxy's URI in their family, or, when a dual-stack
// proxy joins two families, both URIs with next's family first. The UAS
// routes through the top one and the UAC, which reverses the list,
// through the bottom one: each reaches the proxy in its own family (the
// double Record-Route of RFC 5658 §4); Fix.RemoveRouteAlso removes both.
func (p *Proxy) rrValue(nat bool, prev, next netip.Addr) []byte {
	n := 0
	if nat {
		n = 1
	}
	if p.alt.conn != nil && agent.FamilyOf(prev) != agent.FamilyOf(next) {
		return p.rrTwo[p.familyIndex(next)][n]
	}
	return p.rrOne[p.familyIndex(next)][n]
}

// familyIndex is 1 for an address in AltSelf's family, else 0 (Self's).
func (p *Proxy) familyIndex(a netip.Addr) int {
	if p.alt.conn != nil && agent.FamilyOf(a) == agent.FamilyOf(p.alt.self.Addr()) {
		return 1
	}
	return 0
}

// selfFor is the proxy's address in a's family (Self when single-stack).
func (p *Proxy) selfFor(a netip.Addr) netip.AddrPort {
	if p.familyIndex(a) == 1 {
		return p.alt.self
	}
	return p.self
}

// isSelf reports whether ap is one of the proxy's addresses.
func (p *Proxy) isSelf(ap netip.AddrPort) bool {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return ap == p.self || p.alt.conn != nil && ap == p.alt.self
}

// familyOf is the rtpengine address family of a UA at a, for a
// dual-stack proxy's relay (rtpengine then bridges an IPv6 and an IPv4
// UA); "" when single-stack (the SDP's family is kept).
func (p *Proxy) familyOf(a netip.Addr) rtpengine.Family {
	if p.alt.conn == nil {
		return ""
	}
	return rtpFamily[agent.FamilyOf(a)]
}

// rtpFamily names agent's families (agent.FamilyOf, the rule the proxy
// uses everywhere) as rtpengine writes them.
var rtpFamily = map[agent.Family]rtpengine.Family{agent.IPv4: rtpengine.IPv4, agent.IPv6: rtpengine.IPv6}

// uacFamily is familyOf the UA that sent the request response m answers:
// its Via, the last one (received= where the proxy saw it, else
// sent-by). The relay's answer is for that UA, the offerer.
func (p *Proxy) uacFamily(m *sipmsg.Message) rtpengine.Family {
	if p.alt.conn == nil {
		return ""
	}
	var last sipmsg.Span
	found := false
	for it := m.Values(sipmsg.HdrVia); it.Next(); {
		last, found = it.Span(), true
	}
	if !found {
		return ""
	}
	b := m.Bytes()
	v, err := sipmsg.ParseVia(b, last)
	if err != nil {
		return ""
	}
	if a, ok := v.ReceivedAddr(b); ok {
		return p.familyOf(a)
	}
	a, _ := v.HostAddr(b)
	return p.familyOf(a)
}

// CrossFamily returns how many SDP bodies the proxy sent to a UA whose
// family the media addresses are not in (an IPv6 UA's offer to an IPv4
// UA): without a media relay that bridges families those calls have no
// audio.
func (p *Proxy) CrossFamily() uint64 { return p.crossed.Load() }

// checkFamily warns, once per message, when m carries SDP whose media is in
// another family than to, the UA it goes to: a single-family UA cannot
// send there, and nothing on the way translates (the proxy relays
// signalling; sipedge keeps the SDP's family).
func (p *Proxy) checkFamily(m *sipmsg.Message, to netip.AddrPort) {
	if !m.HasSDP() || p.relay != nil { // rtpengine writes the SDP in to's family (relayRequest, uacFamily)
		return
	}
	for _, a := range agent.PeerAddrs(m.Body()) {
		if a.IsUnspecified() || agent.FamilyOf(a) == agent.FamilyOf(to.Addr()) {
			continue
		}
		p.crossed.Add(1)
		callID, _ := m.Get(sipmsg.HdrCallID)
		p.log.Warn("SDP in another address family than the UA it goes to: unless that UA is dual-stack the call has no audio; "+
			"natproxy relays signalling only and cannot bridge families (rtpengine with an address family can)",
			"call", string(callID), "to", to, "media", a)
		return
	}
}
