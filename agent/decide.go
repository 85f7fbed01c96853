package agent

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/binding"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/ipaddr"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/nat"
)

// Observations is everything a plan is decided from. The agent fills it
// from its own probes; a diagnostic (natcheck) fills it from what it
// tested and gets the same verdict.
type Observations struct {
	Local netip.AddrPort // the SIP socket's own address
	// STUNServers says whether STUN servers were configured at all.
	STUNServers bool
	// NAT is the discovery result on the SIP socket (nil: none ran or it
	// failed, then NATErr says why).
	NAT    *nat.Result
	NATErr error
	// LifetimeAsked is the LifetimeMax discovery ran with (0: not asked).
	LifetimeAsked time.Duration
	// Choice is discovery.Reconcile over the public-address sources: the
	// one rule for the Contact.
	Choice discovery.Choice
	// Probe is what the gateway speaks (nil: not asked).
	Probe *discovery.ProbeResult
	// Media holds one entry per media socket, with Local set and, when
	// found, the STUN address (Public, From FromSTUN) or the port mapping.
	Media []MediaPlan
	// RegistrarSTUN: the registrar answered STUN on its SIP port, so
	// STUN keep-alives refresh the very binding SIP uses.
	RegistrarSTUN bool
	Disable       Mechanism
	Relay         RelayMode
}

func (o *Observations) allowed(m Mechanism) bool { return o.Disable&m == 0 }

// Decide turns observations into a plan. It is the agent's one rule for
// the decision (direct, port mapping, relay), the Contact (through
// discovery.Reconcile), the keep-alive (binding.KeepAliveInterval) and the
// predictions; it does no I/O.
func Decide(o Observations) *Plan {
	p := &Plan{Local: o.Local, NAT: o.NAT, Probe: o.Probe, Decision: Direct}
	if o.NATErr != nil {
		p.NATErr = o.NATErr.Error()
	}
	ch := o.Choice
	p.Gateway = &ch
	p.CGNAT, p.DoubleNAT = ch.CGNAT, ch.DoubleNAT
	res := o.NAT

	blocked := res != nil && res.Mapping == nat.Blocked || res == nil && o.STUNServers && o.NATErr != nil
	noNAT := res != nil && res.Mapping == nat.None || res == nil && !o.STUNServers && o.Local.Addr().IsValid() && !ipaddr.IsPrivate(o.Local.Addr())
	if blocked {
		p.Contact, p.ContactFrom = o.Local, FromLocal
		p.Decision = Relay
		p.Relay = RelayPlan{Needed: true, Reason: "no STUN server answered over UDP: UDP seems blocked; SIP needs TCP or TLS and media a relay over TCP"}
		p.IncomingCalls = Prediction{Reason: "no STUN server answered over UDP (" + p.NATErr + "): SIP over UDP will not get through"}
		p.TwoWayAudio = Prediction{Reason: "UDP is blocked: media needs a relay over TCP or TLS"}
		p.Media = decideMediaLocal(o.Media)
		return p
	}

	// Contact: Reconcile's answer.
	p.Contact, p.ContactFrom = ch.Contact, sourceOf(ch.Source)
	if !p.Contact.IsValid() {
		p.Contact, p.ContactFrom = o.Local, FromLocal
	}
	if p.ContactFrom == FromMapping {
		p.Decision = ViaPortMapping
	}
	p.note("Contact: %s", ch.Reason)
	// No NAT but a stateful firewall (an IPv6 home gateway, RFC 6092): the
	// address is global, inbound packets pass only on a flow the UA keeps
	// open or through a pinhole (a port mapping to the UA's own address).
	firewalled := noNAT && res != nil && (res.Filtering == nat.AddressDependent || res.Filtering == nat.AddressAndPortDependent)
	behind := !noNAT
	if behind && !ch.Observations.Gateway.IsValid() && ch.Observations.Mapping == nil && !ch.CGNAT {
		p.note("CGNAT and double NAT: not tested (the gateway reported no external address to compare with STUN)")
	}
	if behind && p.ContactFrom != FromMapping && o.allowed(Rport) {
		p.Learn = true
		if p.ContactFrom == FromLocal {
			p.ContactFrom = FromRport
		}
	}
	if res != nil && behind && p.ContactFrom == FromSTUN && res.MappingVaries {
		p.note("the NAT's public port changes per destination: the STUN address is only a first guess for the registrar; the agent follows its rport")
	}

	// Keep-alive.
	var unmeasured string
	if behind || firewalled && p.ContactFrom != FromMapping {
		p.KeepAlive, unmeasured = decideKeepAlive(o)
	}
	if firewalled {
		if p.ContactFrom == FromMapping {
			p.note("no NAT, but a stateful firewall: its pinhole keeps the SIP port reachable, no keep-alive needed")
		} else {
			p.note("no NAT, but a stateful firewall: keep-alives hold the flow to the registrar open (or a pinhole: PCP, UPnP IGD:2)")
		}
	}

	// Incoming calls.
	switch {
	case noNAT && !firewalled:
		p.IncomingCalls = Prediction{Works: true, Reason: "no NAT: the local address " + o.Local.Addr().String() + " is public"}
	case firewalled && p.ContactFrom != FromMapping:
		p.IncomingCalls = Prediction{Works: true, Assumed: p.KeepAlive.Assumed,
			Reason: fmt.Sprintf("the address %s is public but a stateful firewall filters: the registrar reaches the UA over the flow the keep-alives hold open (%s every %v)", o.Local.Addr(), p.KeepAlive.Kind, p.KeepAlive.Interval)}
	case firewalled:
		p.IncomingCalls = Prediction{Works: true, Reason: fmt.Sprintf("the firewall's pinhole lets the registrar reach %s without keep-alives", p.Contact)}
	case p.ContactFrom == FromMapping:
		p.IncomingCalls = Prediction{Works: true, Reason: fmt.Sprintf("the gateway forwards %s to the SIP socket; keep-alives also hold the flow to the registrar open", p.Contact)}
	case p.ContactFrom == FromSTUN || p.Learn:
		p.IncomingCalls = Prediction{Works: true, Assumed: p.KeepAlive.Assumed,
			Reason: fmt.Sprintf("the registrar reaches the UA over the flow the keep-alives hold open (%s every %v)", p.KeepAlive.Kind, p.KeepAlive.Interval)}
		if p.KeepAlive.Assumed {
			p.IncomingCalls.Reason += ", assuming the NAT keeps an idle binding longer than that: " + unmeasured
		}
	default:
		p.IncomingCalls = Prediction{Reason: "no mechanism gives a reachable Contact (STUN, port mapping and rport are off or found nothing)"}
	}

	// Media.
	p.Media = decideMedia(o, p)
	p.TwoWayAudio = decideTwoWay(o, p, noNAT)
	if o.Relay == RelayForce {
		p.Decision = ForceRelay
		p.Relay = RelayPlan{Needed: true, Forced: true, Reason: "media through a relay because the configuration forces it"}
		p.TwoWayAudio = Prediction{Reason: "media must go through a relay (forced), and no relay is allocated"}
	}
	return p
}

func sourceOf(s discovery.Source) Source {
	switch s {
	case discovery.SourceMapping:
		return FromMapping
	case discovery.SourceSTUN:
		return FromSTUN
	}
	return FromLocal
}

// decideKeepAlive picks the keep-alive kind and the interval from the
// measured lifetime (binding.KeepAliveInterval, the one rule), and says what
// was not measured (also returned alone, "" when it was measured).
func decideKeepAlive(o Observations) (KeepAlivePlan, string) {
	k := KeepAlivePlan{Kind: keepalive.Options}
	kind := "OPTIONS to the registrar (any answer counts, and its rport shows the public address)"
	if o.RegistrarSTUN {
		k.Kind = keepalive.STUN
		kind = "STUN to the registrar's SIP port (RFC 5626 §4.4.2): it refreshes the very binding SIP uses"
	}
	res := o.NAT
	var lifetime time.Duration
	if res != nil {
		lifetime = res.Lifetime
	}
	k.Interval = binding.KeepAliveInterval(lifetime)
	var why string
	switch {
	case res != nil && res.Lifetime > 0 && res.LifetimeBound > 0:
		k.Reason = fmt.Sprintf("%s; half the measured binding lifetime (alive after %v idle, gone after %v)", kind, res.Lifetime, res.LifetimeBound)
	case res != nil && res.Lifetime > 0:
		k.Reason = fmt.Sprintf("%s; half the binding lifetime's lower bound (still alive after %v idle, the longest tried)", kind, res.Lifetime)
	default:
		k.Assumed = true
		why = "the binding lifetime was not measured (no STUN server)"
		switch {
		case res == nil:
		case o.LifetimeAsked == 0:
			why = "the binding lifetime was not measured (not asked)"
		case res.Method == nat.MethodRFC3489 || res.Method == nat.MethodBasic || res.Method == nat.MethodTwoServer:
			why = fmt.Sprintf("the binding lifetime is unknown: the STUN server (%s) cannot measure it (no RESPONSE-PORT)", res.Method)
		default:
			why = "the binding lifetime could not be measured (the server ignored RESPONSE-PORT or the probes failed)"
		}
		k.Reason = fmt.Sprintf("%s; %s, so %v is assumed; the agent shortens it when a keep-alive or the registrar shows the binding expired", kind, why, k.Interval)
	}
	return k, why
}

// decideMedia fills the public address of each media socket: the port
// mapping when the Contact uses one, else STUN, else the local address.
func decideMedia(o Observations, p *Plan) []MediaPlan {
	out := make([]MediaPlan, len(o.Media))
	for i, m := range o.Media {
		out[i] = MediaPlan{Local: m.Local, Public: m.Local, From: FromLocal, Error: m.Error}
		switch {
		case p.ContactFrom == FromMapping && m.Mapping != nil:
			out[i].Public, out[i].From, out[i].Mapping = m.Mapping.External, FromMapping, m.Mapping
		case m.Public.IsValid() && m.From == FromSTUN && o.allowed(STUN):
			out[i].Public, out[i].From, out[i].KeepAlive = m.Public, FromSTUN, true
		}
	}
	return out
}

func decideMediaLocal(media []MediaPlan) []MediaPlan {
	out := make([]MediaPlan, len(media))
	for i, m := range media {
		out[i] = MediaPlan{Local: m.Local, Public: m.Local, From: FromLocal, Error: m.Error}
	}
	return out
}

// decideTwoWay predicts whether a peer's media reaches the UA, and sets
// the relay slot where nothing direct can.
func decideTwoWay(o Observations, p *Plan, noNAT bool) Prediction {
	res := o.NAT
	for i, m := range p.Media {
		if m.From == FromLocal && !noNAT {
			why := "its address stays the private " + m.Local.String()
			if m.Error != "" {
				why += " (" + m.Error + ")"
			}
			return Prediction{Reason: fmt.Sprintf("media socket %d: %s; the peer's audio would not reach it", i, why)}
		}
	}
	switch {
	case noNAT:
		return Prediction{Works: true, Reason: "no NAT: the media sockets' own addresses are public"}
	case p.Decision == ViaPortMapping:
		return Prediction{Works: true, Reason: "the gateway forwards the media ports, and nothing beyond it is in the way"}
	case res == nil:
		return Prediction{Works: true, Assumed: true, Reason: "no STUN server: the NAT's behaviour is unknown"}
	case res.Mapping == nat.EndpointIndependent:
		return Prediction{Works: true, Reason: "endpoint-independent mapping: the STUN address of each media socket is the one every peer sees, and symmetric RTP (RFC 4961) opens the filter for the peer"}
	case res.MappingVaries || res.Mapping == nat.AddressDependent || res.Mapping == nat.AddressAndPortDependent:
		p.Decision = Relay
		why := fmt.Sprintf("the NAT gives a new public port for every destination (%s mapping)", res.Mapping)
		if p.CGNAT || p.DoubleNAT {
			why += " and a port mapping on the home gateway does not open the NAT beyond it"
		} else if o.Probe != nil && !(o.Probe.PCP || o.Probe.NATPMP || o.Probe.UPnP) {
			why += " and the gateway offers no port mapping"
		}
		p.Relay = RelayPlan{Needed: true, Reason: why + ": the peer's media cannot reach the port the SDP names; a media relay (TURN) is needed"}
		return Prediction{Reason: p.Relay.Reason}
	}
	return Prediction{Works: true, Assumed: true, Reason: fmt.Sprintf("the mapping behaviour was not measured (%s method): works if the NAT is endpoint-independent", res.Method)}
}
