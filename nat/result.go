package nat

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/binding"
	"github.com/sipnat/sipnat/ipaddr"
)

// Behavior is a NAT mapping or filtering behaviour as RFC 4787 names it.
// Its text form is the lower-case hyphenated name ("address-dependent").
type Behavior uint8

// The behaviours. None means there is no NAT (mapping) or no filtering
// beyond what a NAT does (filtering of an open host); Blocked means UDP does
// not get through at all; Unknown means the probes could not tell.
const (
	Unknown Behavior = iota
	None
	EndpointIndependent
	AddressDependent
	AddressAndPortDependent
	Blocked
)

var behaviorNames = [...]string{
	Unknown:                 "unknown",
	None:                    "none",
	EndpointIndependent:     "endpoint-independent",
	AddressDependent:        "address-dependent",
	AddressAndPortDependent: "address-and-port-dependent",
	Blocked:                 "blocked",
}

// String returns the name, e.g. "endpoint-independent".
func (b Behavior) String() string {
	if int(b) < len(behaviorNames) {
		return behaviorNames[b]
	}
	return "unknown"
}

// MarshalText returns the name.
func (b Behavior) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses a name that String returns.
func (b *Behavior) UnmarshalText(t []byte) error {
	for i, n := range behaviorNames {
		if n == string(t) {
			*b = Behavior(i)
			return nil
		}
	}
	return fmt.Errorf("behaviour %q: %w", t, ErrUnknownValue)
}

// ClassicType is the RFC 3489 NAT type.
type ClassicType uint8

// The RFC 3489 types (section 10.1).
const (
	ClassicUnknown ClassicType = iota
	OpenInternet
	FullCone
	RestrictedCone
	PortRestrictedCone
	Symmetric
	SymmetricUDPFirewall
	UDPBlocked
)

var classicNames = [...]string{
	ClassicUnknown:       "unknown",
	OpenInternet:         "open internet",
	FullCone:             "full cone",
	RestrictedCone:       "restricted cone",
	PortRestrictedCone:   "port restricted cone",
	Symmetric:            "symmetric",
	SymmetricUDPFirewall: "symmetric UDP firewall",
	UDPBlocked:           "blocked",
}

// String returns the RFC 3489 name, e.g. "port restricted cone".
func (c ClassicType) String() string {
	if int(c) < len(classicNames) {
		return classicNames[c]
	}
	return "unknown"
}

// MarshalText returns the name.
func (c ClassicType) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses a name that String returns.
func (c *ClassicType) UnmarshalText(t []byte) error {
	for i, n := range classicNames {
		if n == string(t) {
			*c = ClassicType(i)
			return nil
		}
	}
	return fmt.Errorf("RFC 3489 type %q: %w", t, ErrUnknownValue)
}

// Method says how Discover classified, which depends on what the server
// supports.
type Method string

// The methods.
const (
	// MethodRFC5780: the server sent OTHER-ADDRESS; full behaviour discovery.
	MethodRFC5780 Method = "rfc5780"
	// MethodRFC3489: the server sent CHANGED-ADDRESS (an RFC 3489 server
	// such as stund); the same probes, its alternate address from there.
	MethodRFC3489 Method = "rfc3489"
	// MethodTwoServer: no alternate address; the mapping was compared
	// across two servers ("mapping varies by destination"), no filtering.
	MethodTwoServer Method = "two-server"
	// MethodBasic: one plain server; only the public address is known.
	MethodBasic Method = "basic"
	// MethodNone: no server answered.
	MethodNone Method = "none"
)

// Result is what Discover found out. Its JSON form is what natcheck -json
// prints; durations are in nanoseconds there.
type Result struct {
	Server netip.AddrPort `json:"server"` // the server the behaviour tests used
	Method Method         `json:"method"`
	Local  netip.AddrPort `json:"local"`  // the socket's own address
	Public netip.AddrPort `json:"public"` // the socket's mapped (public) address
	// NAT64 is the NAT64 prefix the probes went through (DiscoverConfig.NAT64):
	// Public is then the IPv4 address the NAT64 gave an IPv6-only host.
	NAT64 netip.Prefix `json:"nat64,omitzero"`

	Mapping   Behavior    `json:"mapping"`   // the mapping behaviour (RFC 4787)
	Filtering Behavior    `json:"filtering"` // the filtering behaviour (RFC 4787)
	Classic   ClassicType `json:"classic"`   // RFC 3489 type
	// MappingVaries is set when the public address differed between
	// destinations (two-server method, or address-dependent mapping).
	MappingVaries bool `json:"mapping_varies"`
	// Hairpin: whether a packet to the own public address came back
	// (RFC 5780 section 4.5); nil when not tested (no NAT, or no answer).
	Hairpin *bool `json:"hairpin"`
	// PortPreserved: the public port equals the local port.
	PortPreserved bool `json:"port_preserved"`

	// Lifetime is the longest idle time after which the binding still
	// worked (RFC 5780 section 4.6); LifetimeBound the shortest after which
	// it had gone (0: none gone up to Lifetime, which is then a lower
	// bound). Both zero when not measured.
	Lifetime      time.Duration `json:"lifetime"`
	LifetimeBound time.Duration `json:"lifetime_bound"`

	// CGNAT: a carrier-grade NAT is on the path: the public address is in
	// 100.64.0.0/10, or the gateway's external address (GatewayExternal) is
	// a shared or private address other than the public one.
	CGNAT bool `json:"cgnat"`
	// DoubleNAT: more than one NAT is on the path (CGNAT or another private
	// NAT beyond the home gateway).
	DoubleNAT bool `json:"double_nat"`
	// GatewayExternal is the gateway's external address as the discovery
	// package found it (UPnP, NAT-PMP, PCP), if it was given.
	GatewayExternal netip.Addr `json:"gateway_external,omitzero"`

	SIP SIPVerdict `json:"sip"` // what the result means for a SIP UA
	// Elapsed is how long discovery took.
	Elapsed time.Duration `json:"elapsed"`
}

// SIPVerdict is what the NAT means for a SIP user agent, in plain words.
type SIPVerdict struct {
	// STUNContact: a Contact (and SDP address) built from the STUN-mapped
	// address reaches the UA, at least from the proxy it keeps the binding
	// open to.
	STUNContact bool `json:"stun_contact"`
	// RportSuffices: the UA can rely on rport/received (RFC 3581) and the
	// proxy sending back to the flow's source, as long as it keeps it alive.
	RportSuffices bool `json:"rport_suffices"`
	// MediaRelay: media to peers other than the proxy needs a relay (TURN
	// or a media proxy): the public address differs per destination.
	MediaRelay bool `json:"media_relay"`
	// KeepAlive is the interval of keep-alives that keeps the binding
	// open: half the measured lifetime, or 25 s when it was not measured;
	// 0 when no NAT needs it.
	KeepAlive time.Duration `json:"keepalive"`
	// Summary says the above in a sentence or two.
	Summary string `json:"summary"`
}

// CompareGateway records the gateway's external address (as UPnP, NAT-PMP
// or PCP report it) and sets CGNAT, DoubleNAT and the verdict by
// CompareLayers, the one rule for them.
func (r *Result) CompareGateway(gw netip.Addr) {
	gw = gw.Unmap()
	if !gw.IsValid() {
		return
	}
	r.GatewayExternal = gw
	l := ipaddr.CompareLayers(gw, r.Public.Addr())
	r.CGNAT, r.DoubleNAT = l.CGNAT, l.DoubleNAT
	r.SIP = verdict(r)
}

// classicOf derives the RFC 3489 type from mapping and filtering.
func classicOf(m, f Behavior) ClassicType {
	switch m {
	case Blocked:
		return UDPBlocked
	case None:
		if f == None || f == EndpointIndependent {
			return OpenInternet
		}
		if f == Unknown {
			return ClassicUnknown
		}
		return SymmetricUDPFirewall
	case AddressDependent, AddressAndPortDependent:
		return Symmetric
	case EndpointIndependent:
		switch f {
		case EndpointIndependent:
			return FullCone
		case AddressDependent:
			return RestrictedCone
		case AddressAndPortDependent:
			return PortRestrictedCone
		}
	}
	return ClassicUnknown
}

func verdict(r *Result) SIPVerdict {
	var v SIPVerdict
	var b strings.Builder
	switch {
	case r.Mapping == Blocked:
		v.Summary = "UDP is blocked: SIP over UDP will not work; use SIP over TCP or TLS, and a TURN relay over TCP for media."
		return v
	case r.Mapping == None && (r.Filtering == None || r.Filtering == EndpointIndependent):
		v.STUNContact, v.RportSuffices = true, true
		v.Summary = "No NAT: the local address is public; Contact and SDP can use it as is, no keep-alive or relay needed."
		return v
	}
	v.RportSuffices = true
	v.KeepAlive = binding.KeepAliveInterval(r.Lifetime)
	switch r.Mapping {
	case None:
		v.STUNContact = true
		b.WriteString("No NAT, but a firewall filters inbound UDP: keep the flow to the proxy open; ")
	case EndpointIndependent:
		v.STUNContact = true
		b.WriteString("The public address is the same toward every destination: a STUN-derived Contact and SDP address work")
		if r.Filtering != EndpointIndependent {
			b.WriteString(" for the proxy and for peers that send first (symmetric RTP)")
		}
		b.WriteString("; ")
	case AddressDependent, AddressAndPortDependent, Unknown:
		if r.MappingVaries || r.Mapping != Unknown {
			v.MediaRelay = true
			b.WriteString("The public address changes per destination (symmetric NAT): a STUN-derived Contact or SDP address is wrong for anyone but the STUN server; rely on rport/received at the proxy and a media relay (TURN or an RTP proxy); ")
		} else {
			b.WriteString("The NAT behaviour is not fully known; rely on rport/received at the proxy; ")
		}
	}
	if r.CGNAT {
		b.WriteString("a carrier-grade NAT is on the path, so port mappings on the home gateway (UPnP, PCP) do not open it to the internet; ")
	} else if r.DoubleNAT {
		b.WriteString("a second NAT is on the path, so gateway port mappings do not reach the internet; ")
	}
	fmt.Fprintf(&b, "send keep-alives every %v.", v.KeepAlive)
	v.Summary = b.String()
	return v
}

// String returns a readable multi-line report.
func (r *Result) String() string {
	var b strings.Builder
	line := func(k, format string, a ...any) {
		fmt.Fprintf(&b, "%-18s %s\n", k+":", fmt.Sprintf(format, a...))
	}
	line("server", "%v (%s)", r.Server, r.Method)
	line("local address", "%v", r.Local)
	if r.NAT64.IsValid() {
		line("NAT64", "prefix %v: IPv4 peers are reached at their synthesised addresses; write the IPv4 public address for them", r.NAT64)
	}
	if r.Public.IsValid() {
		line("public address", "%v", r.Public)
	} else {
		line("public address", "none (no STUN answer)")
	}
	line("mapping", "%v", r.Mapping)
	line("filtering", "%v", r.Filtering)
	line("RFC 3489 type", "%v", r.Classic)
	noNAT := r.Mapping == None
	switch {
	case noNAT:
		line("hairpin", "n/a (no NAT)")
	case r.Hairpin == nil:
		line("hairpin", "not tested")
	case *r.Hairpin:
		line("hairpin", "yes")
	default:
		line("hairpin", "no")
	}
	if noNAT {
		line("port preserved", "n/a (no NAT)")
	} else {
		line("port preserved", "%v", yesNo(r.PortPreserved))
	}
	switch {
	case noNAT:
		line("binding lifetime", "n/a (no NAT)")
	case r.Lifetime == 0 && r.LifetimeBound == 0:
		line("binding lifetime", "not measured")
	case r.LifetimeBound == 0:
		line("binding lifetime", "at least %v", r.Lifetime)
	default:
		line("binding lifetime", "%v (gone after %v idle)", r.Lifetime, r.LifetimeBound)
	}
	cg := yesNo(r.CGNAT)
	if r.GatewayExternal.IsValid() {
		cg += fmt.Sprintf(" (gateway external address %v)", r.GatewayExternal)
	}
	line("CGNAT", "%s", cg)
	line("SIP", "%s", r.SIP.Summary)
	line("took", "%v", r.Elapsed.Round(time.Millisecond))
	return b.String()
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}
