package netlab

import (
	"net/netip"
	"time"
)

// Kind is a NAT behaviour the router can be built with (RFC 4787 terms).
type Kind string

// The NAT kinds of the lab. The comments give RFC 4787 mapping / filtering.
const (
	EIMEIF  Kind = "eim-eif"  // endpoint-independent / endpoint-independent ("full cone")
	EIMADF  Kind = "eim-adf"  // endpoint-independent / address-dependent ("restricted cone")
	EIMAPDF Kind = "eim-apdf" // endpoint-independent / address-and-port-dependent ("port restricted")
	ADMAPDF Kind = "adm-apdf" // address-dependent / address-and-port-dependent
	APDM    Kind = "apdm"     // address-and-port-dependent / APDF ("symmetric")
	None    Kind = "none"     // no NAT: the client has a public address
	Blocked Kind = "blocked"  // UDP blocked, TCP masqueraded
)

// Kinds lists every kind, in the order tests usually walk them.
var Kinds = []Kind{EIMEIF, EIMADF, EIMAPDF, ADMAPDF, APDM, None, Blocked}

// Behavior is a mapping or filtering behaviour as RFC 4787 names it.
type Behavior string

// The behaviours Truth reports.
const (
	EndpointIndependent     Behavior = "endpoint-independent"
	AddressDependent        Behavior = "address-dependent"
	AddressAndPortDependent Behavior = "address-and-port-dependent"
	NoNAT                   Behavior = "none"
	BlockedUDP              Behavior = "blocked"
)

// Node names one host of the lab.
type Node string

// The nodes. CGN exists only with Config.CGNAT.
const (
	LAN Node = "lan" // the UA
	RTR Node = "rtr" // the home router (NAT, miniupnpd)
	CGN Node = "cgn" // the carrier-grade NAT
	WAN Node = "wan" // "the internet": STUN servers, kamailio, peers
)

// Addresses of the lab. They are RFC 1918, RFC 6598 or documentation
// addresses, and exist only inside the lab's namespaces.
var (
	Client     = netip.MustParseAddr("192.168.1.10")  // the UA behind NAT
	RouterLAN  = netip.MustParseAddr("192.168.1.1")   // the home router, LAN side (gateway, miniupnpd)
	Public     = netip.MustParseAddr("203.0.113.1")   // the public address of the NAT path
	Server1    = netip.MustParseAddr("203.0.113.2")   // WAN server, primary address
	Server2    = netip.MustParseAddr("203.0.113.3")   // WAN server, alternate address
	Peer       = netip.MustParseAddr("198.51.100.2")  // another WAN peer
	OpenClient = netip.MustParseAddr("203.0.113.130") // the client with kind None
	OpenRouter = netip.MustParseAddr("203.0.113.129") // the router with kind None
	RouterCGN  = netip.MustParseAddr("100.64.0.2")    // the home router's WAN address behind the CGN
	CGNInside  = netip.MustParseAddr("100.64.0.1")    // the CGN, inside
	CGNInside2 = netip.MustParseAddr("100.64.0.3")    // the CGN's second inside address

	// With Config.OuterPrivate the CGN's inside network is private instead.
	RouterOuter  = netip.MustParseAddr("10.64.0.2") // the home router's WAN address behind the private outer NAT
	OuterInside  = netip.MustParseAddr("10.64.0.1") // the outer NAT, inside
	OuterInside2 = netip.MustParseAddr("10.64.0.3") // the outer NAT's second inside address
)

// Service ports.
const (
	StundPort    = 3478 // stund primary port (3479 alternate), on Server1 and Server2
	CoturnPort   = 3480 // coturn primary port (3481 alternate), on Server1 and Server2
	KamailioPort = 5060 // kamailio on Server1, UDP and TCP
	// KamailioTLSPort is kamailio's TLS port with Config.KamailioTLS.
	KamailioTLSPort = 5061
	// KamailioTLSName is the DNS name in kamailio's lab certificate.
	KamailioTLSName = "sip.lab.example"
	UPnPHTTPPort    = 2869 // miniupnpd's HTTP (device description, SOAP) on RouterLAN
	PMPPort         = 5351 // NAT-PMP and PCP on RouterLAN
	SSDPPort        = 1900 // SSDP multicast
	defaultMinLTS   = 60
)

// Config says what lab to build. The zero value is an eim-apdf NAT with
// kernel default timeouts and no services.
type Config struct {
	Kind    Kind          // NAT kind of the home router; "" means EIMAPDF
	Hairpin bool          // hairpin UDP sent to the public address back into the LAN (RFC 4787 REQ-9)
	Timeout time.Duration // UDP binding timeout of the home router (whole seconds); 0 keeps kernel defaults (30 s / 120 s)
	ALG     bool          // attach the kernel SIP ALG to UDP 5060 from the LAN
	UPnP    bool          // run miniupnpd (UPnP IGD v1, NAT-PMP, PCP) on the router; implies a stund for its STUN check
	// UPnPMinLifetime is miniupnpd's min_lifetime for PCP (seconds); 0 means 60.
	UPnPMinLifetime int
	CGNAT           bool // put a carrier-grade NAT between the home router and the internet
	CGNKind         Kind // the CGN's kind; "" means EIMEIF; setting it implies CGNAT
	// OuterPrivate gives the NAT beyond the home router (the CGN node) the
	// private inside network 10.64.0.0/24 instead of RFC 6598 shared space:
	// an ordinary double NAT (a home router behind an ISP's router), not a
	// carrier-grade one. It implies CGNAT's topology; Truth says DoubleNAT
	// and not CGNAT.
	OuterPrivate bool
	Kamailio     bool // run kamailio (registrar with nathelper, record-routing INVITEs) on Server1:5060
	KamailioAuth bool // kamailio challenges REGISTER (digest; password KamailioPassword); implies Kamailio
	Stund        bool // run stund (RFC 3489) on Server1/Server2, ports 3478/3479
	Coturn       bool // run coturn --stun-only (RFC 5780) on Server1/Server2, ports 3480/3481
	LossPercent  int  // drop this percentage of forwarded packets at random on the router (0-100)
	// TCPTimeout is the router's (and the CGN's) established-TCP timeout
	// (conntrack nf_conntrack_tcp_timeout_established, whole seconds): an
	// idle connection is forgotten after it, as a home router does; 0 keeps
	// the kernel's 5 days. The NATs never pick up a connection they forgot
	// (nf_conntrack_tcp_loose=0), like a rebooted router.
	TCPTimeout time.Duration
	// KamailioTLS adds a TLS listener to kamailio on Server1:KamailioTLSPort
	// with a certificate from a throw-away CA the lab makes (Lab.Certs);
	// implies Kamailio.
	KamailioTLS bool
	// KamailioFlowTimer turns on kamailio's RFC 5626 support (registrar
	// outbound_mode 1, the outbound module): a REGISTER with ;ob, reg-id
	// and +sip.instance gets Require: outbound and this Flow-Timer; 0 keeps
	// outbound off. Implies Kamailio.
	KamailioFlowTimer time.Duration
	// TURN runs a relaying coturn on Server1 (TURNPort, long-term
	// credentials TURNUser/TURNPassword) when not nil.
	TURN *TURN
	// IPv6 adds IPv6 (a dual-stack RFC 6092 firewall, NPTv6, NAT66, or an
	// IPv6-only LAN behind NAT64/DNS64); "" keeps the lab IPv4-only.
	IPv6 IPv6Mode
}

func (c Config) normalized() Config {
	if c.Kind == "" {
		c.Kind = EIMAPDF
	}
	if c.CGNKind != "" || c.OuterPrivate {
		c.CGNAT = true
	}
	if c.CGNAT && c.CGNKind == "" {
		c.CGNKind = EIMEIF
	}
	if c.KamailioAuth || c.KamailioTLS || c.KamailioFlowTimer > 0 {
		c.Kamailio = true
	}
	if c.UPnPMinLifetime == 0 {
		c.UPnPMinLifetime = defaultMinLTS
	}
	return c
}

// Truth is what the lab was built to be, as RFC 4787 and RFC 5780 would
// classify it from the client.
type Truth struct {
	Kind             Kind     // the home router's NAT kind
	Mapping          Behavior // the mapping behaviour (RFC 4787)
	Filtering        Behavior // the filtering behaviour (RFC 4787)
	Hairpin          bool     // the router hairpins
	UPnP             bool     // miniupnpd runs on the router (UPnP IGD, NAT-PMP, PCP)
	CGNAT            bool     // a carrier-grade NAT (RFC 6598 inside) is beyond the home router
	DoubleNAT        bool     // any NAT is beyond the home router (CGNAT or OuterPrivate)
	CGNKind          Kind
	ALG              bool
	Kamailio         bool
	Timeout          time.Duration // 0: kernel defaults
	TCPTimeout       time.Duration // idle established-TCP timeout of the NATs; 0: the kernel's
	PortPreservation bool          // the NAT keeps the client's source port (eim kinds)
	Client           netip.Addr    // the client's own address
	Public           netip.Addr    // the client's public address as a STUN server sees it
	RouterWAN        netip.Addr    // the address the home router itself reports (UPnP, NAT-PMP)
	IPv6             IPv6Mode      // the lab's IPv6 mode
	Client6          netip.Addr    // the client's IPv6 address (with IPv6)
	Public6          netip.Addr    // the client's IPv6 address as a WAN server sees it (not with NAT64)
	Mapping6         Behavior      // the IPv6 path's mapping: none for the firewall, endpoint-independent for NPTv6/NAT66
	Filtering6       Behavior      // the IPv6 path's filtering: the stateful firewall's address-and-port-dependent
	NAT64Prefix      netip.Prefix  // the NAT64's prefix (NAT64 lab)
}

func mappingOf(k Kind) Behavior {
	switch k {
	case EIMEIF, EIMADF, EIMAPDF:
		return EndpointIndependent
	case ADMAPDF:
		return AddressDependent
	case APDM:
		return AddressAndPortDependent
	case None:
		return NoNAT
	}
	return BlockedUDP
}

func filteringOf(k Kind) Behavior {
	switch k {
	case EIMEIF:
		return EndpointIndependent
	case EIMADF:
		return AddressDependent
	case EIMAPDF, ADMAPDF, APDM:
		return AddressAndPortDependent
	case None:
		return NoNAT
	}
	return BlockedUDP
}

func rank(b Behavior) int {
	switch b {
	case EndpointIndependent:
		return 1
	case AddressDependent:
		return 2
	case AddressAndPortDependent:
		return 3
	}
	return 0
}

// stricter returns the more restrictive of two behaviours (NATs in series).
func stricter(a, b Behavior) Behavior {
	if rank(a) >= rank(b) {
		return a
	}
	return b
}

// outerAddrs returns the home router's WAN address and the outer NAT's two
// inside addresses (RFC 6598, or private with OuterPrivate).
func (c Config) outerAddrs() (router, inside, inside2 netip.Addr) {
	if c.OuterPrivate {
		return RouterOuter, OuterInside, OuterInside2
	}
	return RouterCGN, CGNInside, CGNInside2
}

func truthOf(c Config) Truth {
	t := Truth{
		Kind: c.Kind, Mapping: mappingOf(c.Kind), Filtering: filteringOf(c.Kind),
		Hairpin: c.Hairpin, UPnP: c.UPnP, CGNAT: c.CGNAT, CGNKind: c.CGNKind, ALG: c.ALG,
		Kamailio: c.Kamailio, Timeout: c.Timeout, TCPTimeout: c.TCPTimeout,
		Client: Client, Public: Public, RouterWAN: Public,
	}
	if c.CGNAT && c.Kind != Blocked {
		t.Mapping = stricter(t.Mapping, mappingOf(c.CGNKind))
		t.Filtering = stricter(t.Filtering, filteringOf(c.CGNKind))
	}
	switch c.Kind {
	case EIMEIF, EIMADF, EIMAPDF, Blocked:
		t.PortPreservation = true
	}
	if c.CGNAT {
		t.RouterWAN, _, _ = c.outerAddrs()
		t.DoubleNAT = true
		t.CGNAT = !c.OuterPrivate
		switch c.CGNKind {
		case EIMEIF, EIMADF, EIMAPDF:
		default:
			t.PortPreservation = false
		}
	}
	if c.Kind == None {
		t.Client, t.Public, t.RouterWAN = OpenClient, OpenClient, OpenClient
	}
	if c.IPv6 != IPv6Off {
		t.IPv6, t.Client6, t.Public6 = c.IPv6, Client6, public6(c.IPv6)
		t.Mapping6, t.Filtering6 = NoNAT, AddressAndPortDependent
		if c.IPv6 == IPv6NPT || c.IPv6 == IPv6NAT66 {
			t.Mapping6 = EndpointIndependent
		}
	}
	if c.IPv6 == IPv6NAT64 {
		t.Client, t.NAT64Prefix, t.Mapping6, t.Filtering6 = Client6, NAT64Prefix, "", ""
	}
	return t
}
