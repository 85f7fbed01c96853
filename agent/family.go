package agent

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sipnat/sipnat/ipaddr"
	"github.com/sipnat/sipnat/sdp"
)

// Family is an IP address family a call's media (and, where the SIP
// transport allows, its Contact and Via) uses.
type Family string

// The families. The zero Family means none works.
const (
	IPv4 Family = "IPv4"
	IPv6 Family = "IPv6"
)

// FamilyOf returns the family of a: IPv4 for IPv4 and IPv4-mapped IPv6
// addresses, IPv6 for the other IPv6 addresses, "" for the zero Addr.
func FamilyOf(a netip.Addr) Family {
	switch {
	case !a.IsValid():
		return ""
	case a.Unmap().Is4():
		return IPv4
	}
	return IPv6
}

// FamilyPath is whether the UA can use one family for a call, and why.
type FamilyPath struct {
	Usable bool `json:"usable"` // a call can use this family
	// NAT64: the path is IPv6 to a NAT64 (Config.NAT64), which reaches
	// IPv4 peers.
	NAT64  bool   `json:"nat64,omitempty"`
	Reason string `json:"reason"` // why, in words
}

// FamilyInputs is what the per-call family choice is made from. The
// peer's family is known from its SDP (an incoming offer, or an answer);
// before that (an outgoing call's offer) Target and then Proxy hint at it.
type FamilyInputs struct {
	// V4 and V6 are the plans of the UA's IPv4 and IPv6 agents; nil when
	// the UA has no address (or no working agent) of that family.
	V4, V6 *Plan
	// NAT64 is the NAT64 prefix of the IPv6 agent (Config.NAT64); zero:
	// none.
	NAT64 netip.Prefix
	// Peer are the peer's media addresses from its SDP (PeerAddrs).
	Peer []netip.Addr
	// Target is an outgoing call's Request-URI host: an IP literal, or a
	// name and its DNS addresses (ResolveTarget).
	Target CallTarget
	// Proxy are the outbound proxy's (registrar's) addresses: the families
	// the SIP path reaches, when nothing closer to the peer is known.
	Proxy []netip.Addr
}

// FamilyChoice is the family of one call (or of the registration) and
// why. Its JSON form is what the plan's words say.
type FamilyChoice struct {
	// Family is the chosen family; "" when the UA and the peer have none
	// in common.
	Family Family `json:"family"`
	// NAT64: IPv6 to the NAT64, which translates to an IPv4-only peer
	// (read the peer's SDP through the IPv6 agent's AppendPeerSDP).
	NAT64 bool `json:"nat64,omitempty"`
	// Works is the prediction for the chosen family's path (its plan's
	// two-way audio).
	Works bool `json:"works"`
	// Assumed: the peer's family was not in its SDP yet but guessed from
	// Target or Proxy.
	Assumed bool   `json:"assumed"`
	Reason  string `json:"reason"`
	// IPv4 and IPv6 say what the UA's own paths are worth.
	IPv4 FamilyPath `json:"ipv4"`
	IPv6 FamilyPath `json:"ipv6"`
}

// String returns "IPv6: reason" (or "no common family: reason").
func (c FamilyChoice) String() string {
	f := string(c.Family)
	switch {
	case f == "":
		f = "no common family"
	case c.NAT64:
		f += " through the NAT64"
	}
	if c.Assumed {
		f += " (peer's family assumed)"
	}
	return f + ": " + c.Reason
}

// PeerAddrs returns the media addresses of a peer's SDP body (its audio
// and video streams, sdp.MediaAddr), for FamilyInputs.Peer; none when the
// body names no usable stream.
func PeerAddrs(body []byte) []netip.Addr {
	var out []netip.Addr
	for _, m := range [...]string{"audio", "video"} {
		if ap, err := sdp.MediaAddr(body, m); err == nil {
			out = append(out, ap.Addr().Unmap())
		}
	}
	return out
}

// ChooseFamily is the agent's one rule for the family of a call (and of
// the registration, with the registrar as Proxy): IPv6 when the UA has a
// working IPv6 path (a global address, the firewall's state held by
// keep-alives or a pinhole) and the peer reaches IPv6, because IPv6 needs
// no address rewriting and no SIP ALG touches it; IPv4 with the NAT
// traversal of the IPv4 plan when the peer is IPv4-only; IPv6 through
// the NAT64 when the UA itself has no IPv4. It does no I/O.
//
// The peer's families are those of its SDP; before that (an outgoing
// call's offer, Assumed) those of the call's target: its IP literal, or,
// for a name, the name's DNS addresses (a host with only A records is
// taken for IPv4-only, only AAAA for IPv6-only, both for dual-stack); a
// name that did not resolve, or no target, leaves the proxy's families as
// the guess. An address in the NAT64 prefix (a DNS64's synthesised AAAA)
// counts as the IPv4 address it embeds: the host behind it is IPv4-only.
func ChooseFamily(in FamilyInputs) FamilyChoice {
	c := FamilyChoice{IPv4: pathV4(in.V4), IPv6: pathV6(in.V6, in.NAT64)}
	peer, from := in.Peer, "the peer's SDP"
	switch {
	case len(peer) > 0:
	case len(in.Target.Addrs) > 0 && in.Target.Name != "":
		peer, from, c.Assumed = in.Target.Addrs, "the call's target "+in.Target.Name+" by its DNS addresses", true
	case len(in.Target.Addrs) > 0:
		peer, from, c.Assumed = in.Target.Addrs, "the call's target", true
	case len(in.Proxy) > 0:
		peer, from, c.Assumed = in.Proxy, "the proxy", true
		if in.Target.Name != "" {
			from = "the call's target " + in.Target.Name + " has no address; " + from
		}
	default:
		from, c.Assumed = "nothing (no SDP, target or proxy address)", true
	}
	has4, has6 := len(peer) == 0, len(peer) == 0 // unknown: either
	var names []string
	for _, a := range peer {
		a = a.Unmap()
		name := a.String()
		if v4, ok := ipaddr.ExtractNAT64(in.NAT64, a); ok {
			a, name = v4, name+" = "+v4.String()+" through the NAT64"
		}
		has4 = has4 || FamilyOf(a) == IPv4
		has6 = has6 || FamilyOf(a) == IPv6
		names = append(names, name)
	}
	peerWords := from
	if len(names) > 0 {
		peerWords += " (" + strings.Join(names, ", ") + ")"
	}
	v4, v6 := c.IPv4, c.IPv6
	switch {
	case has6 && v6.Usable && !v6.NAT64:
		c.Family, c.Works = IPv6, true
		c.Reason = fmt.Sprintf("%s reaches IPv6 and the UA's IPv6 path works (%s): IPv6 needs no address rewriting and no SIP ALG touches it", peerWords, v6.Reason)
		if has4 && v4.Usable {
			c.Reason += "; preferred over IPv4 through the NAT"
		}
	case has4 && v4.Usable:
		c.Family, c.Works = IPv4, true
		why := peerWords + " is IPv4-only"
		if has6 {
			why = "IPv6 is not usable (" + v6.Reason + ")"
		}
		c.Reason = fmt.Sprintf("%s: IPv4 with the NAT traversal of the IPv4 plan (%s)", why, v4.Reason)
	case has4 && v6.NAT64 && v6.Usable:
		c.Family, c.NAT64, c.Works = IPv6, true, true
		c.Reason = fmt.Sprintf("%s is IPv4-only and the UA has no working IPv4 (%s): media goes to the peer's synthesised IPv6 address through the NAT64 (%s)", peerWords, v4.Reason, v6.Reason)
	case has6 && in.V6 != nil && !v6.NAT64:
		c.Family = IPv6
		c.Reason = fmt.Sprintf("%s reaches IPv6, the only family in common, but the UA's IPv6 path is not expected to work: %s", peerWords, v6.Reason)
	case has4 && in.V4 != nil:
		c.Family = IPv4
		c.Reason = fmt.Sprintf("%s reaches IPv4, the only family in common, but the UA's IPv4 path is not expected to work: %s", peerWords, v4.Reason)
	case has6 && v6.NAT64:
		c.Family = IPv6
		c.Reason = fmt.Sprintf("%s reaches IPv6, but the IPv6 agent's plan is for IPv4 peers through the NAT64 (its SDP names %s); a native IPv6 call needs an agent without Config.NAT64", peerWords, mediaWords(in.V6))
	case has4 && v6.NAT64:
		c.Family, c.NAT64 = IPv6, true
		c.Reason = fmt.Sprintf("%s is IPv4-only; only the NAT64 reaches it, and the UA's IPv6 path is not expected to work: %s", peerWords, v6.Reason)
	default:
		c.Reason = fmt.Sprintf("no family in common: %s has %s, the UA has %s; a relay that bridges families (rtpengine's address family) is needed",
			peerWords, familiesWords(has4, has6), familiesWords(in.V4 != nil, in.V6 != nil))
	}
	return c
}

func familiesWords(v4, v6 bool) string {
	switch {
	case v4 && v6:
		return "IPv4 and IPv6"
	case v4:
		return "IPv4 only"
	case v6:
		return "IPv6 only"
	}
	return "neither"
}

// pathV4 judges the IPv4 plan: usable when its two-way audio is expected.
func pathV4(p *Plan) FamilyPath {
	switch {
	case p == nil:
		return FamilyPath{Reason: "the UA has no IPv4 agent"}
	case !p.TwoWayAudio.Works:
		return FamilyPath{Reason: "two-way audio over IPv4 not expected: " + p.TwoWayAudio.Reason}
	}
	return FamilyPath{Usable: true, Reason: fmt.Sprintf("%s; SDP names %s", p.Decision, mediaWords(p))}
}

// pathV6 judges the IPv6 plan: usable with a global address (or one a
// prefix translator made global) and two-way audio expected, which for a
// stateful firewall means keep-alives or a pinhole hold its state. With a
// NAT64 the path is to IPv4 peers through it.
func pathV6(p *Plan, nat64 netip.Prefix) FamilyPath {
	if p == nil {
		return FamilyPath{Reason: "the UA has no IPv6 agent"}
	}
	f := FamilyPath{NAT64: nat64.IsValid()}
	if f.NAT64 {
		if !p.TwoWayAudio.Works {
			f.Reason = "two-way audio through the NAT64 " + nat64.String() + " not expected: " + p.TwoWayAudio.Reason
			return f
		}
		f.Usable, f.Reason = true, fmt.Sprintf("IPv6-only behind the NAT64 %s; SDP names %s", nat64, mediaWords(p))
		return f
	}
	addr := p.Local.Addr()
	if len(p.Media) > 0 && p.Media[0].Public.Addr().Is6() {
		addr = p.Media[0].Public.Addr()
	}
	switch {
	case !ipaddr.IsGlobal(addr):
		f.Reason = fmt.Sprintf("the IPv6 address %s is %s, not global", addr, ipaddr.Classify(addr))
	case !p.TwoWayAudio.Works:
		f.Reason = "two-way audio over IPv6 not expected: " + p.TwoWayAudio.Reason
	default:
		f.Usable = true
		f.Reason = "global address " + addr.String()
		switch {
		case p.ContactFrom == FromMapping:
			f.Reason += ", a pinhole keeps the firewall open"
		case p.KeepAlive.Kind != 0:
			f.Reason += fmt.Sprintf(", keep-alives every %v hold the firewall's state", p.KeepAlive.Interval)
		default:
			f.Reason += ", nothing filters"
		}
	}
	return f
}

func mediaWords(p *Plan) string {
	if len(p.Media) == 0 {
		return "no media socket"
	}
	m := p.Media[0]
	return fmt.Sprintf("%s (from %s)", m.Public, m.From)
}
