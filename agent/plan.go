package agent

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sipmsg"
)

// Decision is how the UA's media and calls get through the NAT.
type Decision string

// The decisions.
const (
	// Direct: no NAT, or the NAT's own binding (a STUN-derived address,
	// the registrar's rport, symmetric RTP) is enough.
	Direct Decision = "direct"
	// ViaPortMapping: the gateway forwards public ports to the UA (UPnP
	// IGD, NAT-PMP or PCP) and nothing beyond it is in the way.
	ViaPortMapping Decision = "port mapping"
	// Relay: nothing direct brings the peer's media in (the public port
	// changes per destination and no usable port mapping exists); media
	// needs a relay (TURN). See Plan.Relay.
	Relay Decision = "relay"
	// ForceRelay: media goes through a relay because Config.Relay says so.
	ForceRelay Decision = "force relay"
)

// Source says where an address in the plan came from.
type Source string

// The address sources.
const (
	FromLocal   Source = "local"        // the socket's own address
	FromSTUN    Source = "stun"         // a STUN server's view of the socket
	FromMapping Source = "port mapping" // a gateway port mapping
	FromRport   Source = "rport"        // the registrar's received/rport
	FromRelay   Source = "relay"        // a relayed address (TURN)
)

// Prediction is what the agent expects before any call, and why.
type Prediction struct {
	Works bool `json:"works"` // the agent expects it to work
	// Assumed is set when the prediction rests on something not measured
	// (the binding lifetime, the NAT's mapping behaviour); Reason says
	// what.
	Assumed bool   `json:"assumed"`
	Reason  string `json:"reason"`
}

// String returns "works (assumed): reason".
func (p Prediction) String() string {
	s := "expected to work"
	if !p.Works {
		s = "NOT expected to work"
	}
	if p.Assumed {
		s += " (assumed)"
	}
	return s + ": " + p.Reason
}

// KeepAlivePlan is how the agent keeps the SIP flow to the registrar open.
type KeepAlivePlan struct {
	// Kind is keepalive.STUN when the registrar answers STUN on its SIP
	// port (RFC 5626 §4.4.2), else keepalive.Options; 0 when no
	// keep-alive is needed (no NAT).
	Kind     keepalive.Kind `json:"kind,omitempty"`
	Interval time.Duration  `json:"-"` // how often (JSON: interval_ms)
	// Assumed: the interval is not based on a measured binding lifetime.
	// The agent shortens it when it sees the binding expire.
	Assumed bool   `json:"assumed"`
	Reason  string `json:"reason"`
}

// MarshalJSON writes Interval in milliseconds as interval_ms.
func (k KeepAlivePlan) MarshalJSON() ([]byte, error) {
	type plain KeepAlivePlan
	return json.Marshal(struct {
		plain
		IntervalMS int64 `json:"interval_ms"`
	}{plain(k), k.Interval.Milliseconds()})
}

// MediaPlan is what the SDP says for one media socket.
type MediaPlan struct {
	Local  netip.AddrPort `json:"local"`  // the media socket's own address
	Public netip.AddrPort `json:"public"` // the address the SDP names (c= and m= port)
	From   Source         `json:"from"`   // where Public came from
	// Mapping is the gateway's port mapping of the socket, when used.
	Mapping *discovery.Mapping `json:"mapping,omitempty"`
	// KeepAlive: the agent sends STUN from the socket between calls, so
	// the public address stays valid.
	KeepAlive bool   `json:"keepalive"`
	Error     string `json:"error,omitempty"` // why a source gave nothing
}

// RelayPlan is the relay slot of the plan: whether media needs a relay,
// and the relayed addresses once a TURN client allocated them.
type RelayPlan struct {
	Needed bool   `json:"needed"`           // nothing direct brings the peer's media in
	Forced bool   `json:"forced"`           // Config.Relay forces the relay
	Reason string `json:"reason,omitempty"` // why, in words
	// Server is the TURN server of the allocations.
	Server netip.AddrPort `json:"server,omitzero"`
	// Transport is how the server is reached: UDP from the media sockets,
	// or TCP or TLS (UDP blocked, or Config.RelayTransport); unknown
	// before a relay was tried.
	Transport sipmsg.Transport `json:"transport,omitempty"`
	// Allocations are the relayed addresses, one per media socket, when a
	// relay was allocated; empty otherwise.
	Allocations []netip.AddrPort `json:"allocations,omitempty"`
}

// Plan is what the agent decided: what the SIP stack writes, how the flow
// is kept open, and what it predicts, with the reasons in words. Its JSON
// form carries durations in milliseconds.
type Plan struct {
	Decision Decision `json:"decision"` // direct, port mapping, relay or force relay
	// Contact is the address for Contact and Via sent-by.
	Contact     netip.AddrPort `json:"contact"`
	ContactFrom Source         `json:"contact_from"` // where Contact came from
	// Learn: the agent follows the registrar's rport/received and reports
	// PublicAddressChanged when it differs from Contact.
	Learn bool `json:"learn_rport"`
	// Local is the SIP socket's own address.
	Local netip.AddrPort `json:"local"`

	Media     []MediaPlan   `json:"media"`     // one per media socket, in Config.Media's order
	KeepAlive KeepAlivePlan `json:"keepalive"` // how the flow to the registrar is kept open
	Relay     RelayPlan     `json:"relay"`     // whether media needs a relay, and the relay's addresses

	IncomingCalls Prediction `json:"incoming_calls"` // will the registrar's INVITEs reach the UA
	TwoWayAudio   Prediction `json:"two_way_audio"`  // will the peer's media reach the UA
	// CGNAT and DoubleNAT as ipaddr.CompareLayers found them.
	CGNAT     bool `json:"cgnat"`
	DoubleNAT bool `json:"double_nat"`
	// Notes are further findings in words (ALG seen, a mapping refused).
	Notes []string `json:"notes,omitempty"`

	// What the decision was made from.
	NAT     *nat.Result            `json:"nat,omitempty"`            // the STUN discovery on the SIP socket
	NATErr  string                 `json:"nat_error,omitempty"`      // why the discovery gave nothing
	Gateway *discovery.Choice      `json:"gateway_choice,omitempty"` // discovery.Reconcile's choice
	Probe   *discovery.ProbeResult `json:"gateway_probe,omitempty"`  // what the gateway speaks
	// NAT64 is the NAT64 prefix Config.DetectNAT64 found, and from where.
	NAT64 *discovery.NAT64 `json:"nat64,omitempty"`
}

// Name is a short label for tables: the Contact's source, and the media's
// when it differs.
func (p *Plan) Name() string {
	var media []string
	for _, m := range p.Media {
		if m.From != p.ContactFrom {
			media = append(media, string(m.From))
		}
	}
	if len(media) == 0 {
		return string(p.ContactFrom)
	}
	return "sip:" + string(p.ContactFrom) + " media:" + strings.Join(media, ",")
}

// String is the plan for a person, several lines.
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "decision: %s; Contact %s (from %s)", p.Decision, p.Contact, p.ContactFrom)
	if p.Learn {
		b.WriteString(", following the registrar's rport")
	}
	for i, m := range p.Media {
		fmt.Fprintf(&b, "; media %d: %s (from %s)", i, m.Public, m.From)
	}
	if p.KeepAlive.Kind != 0 {
		fmt.Fprintf(&b, "\n  keep-alive: %s to the registrar every %v", p.KeepAlive.Kind, p.KeepAlive.Interval)
		if p.KeepAlive.Assumed {
			b.WriteString(" (assumed)")
		}
		b.WriteString(": " + p.KeepAlive.Reason)
	}
	fmt.Fprintf(&b, "\n  incoming calls: %s\n  two-way audio: %s", p.IncomingCalls, p.TwoWayAudio)
	if p.Relay.Needed {
		b.WriteString("\n  relay: " + p.Relay.Reason)
		for i, r := range p.Relay.Allocations {
			fmt.Fprintf(&b, "; media %d relayed at %s by %s over %s", i, r, p.Relay.Server, p.Relay.Transport)
		}
	}
	if p.NAT64 != nil {
		fmt.Fprintf(&b, "\n  NAT64: prefix %v (from %s)", p.NAT64.Prefixes[0], p.NAT64.From)
	}
	for _, n := range p.Notes {
		b.WriteString("\n  - " + n)
	}
	return b.String()
}

// udpBlocked: no STUN server answered over UDP.
func (p *Plan) udpBlocked() bool {
	return p.NAT == nil && p.NATErr != "" || p.NAT != nil && p.NAT.Mapping == nat.Blocked
}

func (p *Plan) note(format string, args ...any) {
	p.Notes = append(p.Notes, fmt.Sprintf(format, args...))
}

// clone returns a deep enough copy for a caller to read while the agent
// keeps updating its own.
func (p *Plan) clone() *Plan {
	c := *p
	c.Media = append([]MediaPlan(nil), p.Media...)
	c.Notes = append([]string(nil), p.Notes...)
	c.Relay.Allocations = append([]netip.AddrPort(nil), p.Relay.Allocations...)
	return &c
}
