package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/sipmsg"
)

// Mechanism is a set of NAT traversal mechanisms the agent may use.
type Mechanism uint8

// The mechanisms. Config.Disable turns some off; all are on by default.
const (
	// STUN: public addresses for Contact and SDP from STUN on the SIP and
	// media sockets.
	STUN Mechanism = 1 << iota
	// PortMapping: UPnP IGD, NAT-PMP or PCP port mappings on the gateway.
	PortMapping
	// Rport: follow the public address the registrar reports in
	// received/rport (RFC 3581), as PJSIP's allow_contact_rewrite does.
	Rport
)

// String lists the mechanisms: "stun,mapping,rport" ("none" when empty).
func (m Mechanism) String() string {
	var s []string
	for _, n := range []struct {
		m    Mechanism
		name string
	}{{STUN, "stun"}, {PortMapping, "mapping"}, {Rport, "rport"}} {
		if m&n.m != 0 {
			s = append(s, n.name)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// ParseMechanisms parses a comma-separated list of "stun", "mapping" and
// "rport" (String's form).
func ParseMechanisms(s string) (Mechanism, error) {
	var m Mechanism
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "stun":
			m |= STUN
		case "mapping":
			m |= PortMapping
		case "rport":
			m |= Rport
		case "", "none":
		default:
			return 0, fmt.Errorf("%w: unknown mechanism %q (want stun, mapping or rport)", ErrConfig, strings.TrimSpace(f))
		}
	}
	return m, nil
}

// RelayMode says when media goes through a relay.
type RelayMode uint8

// The relay modes.
const (
	// RelayAuto: a relay only where nothing direct can bring the peer's
	// media in (an address-dependent mapping with no usable port mapping).
	RelayAuto RelayMode = iota
	// RelayForce: media always through a relay (the user asked for it).
	RelayForce
)

// Config configures an Agent. SIP and Registrar are required.
type Config struct {
	// SIP is the UA's SIP socket (UDP). The caller owns it and its read
	// loop, which hands every packet to Agent.HandlePacket first (or is
	// Agent.ServeSIP).
	SIP net.PacketConn
	// Media are the UA's RTP (and RTCP) sockets; their read loops hand
	// packets to Agent.HandleMediaPacket with the socket's index (or are
	// Agent.ServeMedia).
	Media []net.PacketConn
	// STUN servers, preferred first. None: only the registrar's rport
	// tells the public address.
	STUN []netip.AddrPort
	// Registrar is where the UA registers (and its outbound proxy): the
	// flow the keep-alives hold open.
	Registrar netip.AddrPort
	// Domain is the Request-URI host of OPTIONS keep-alives; "" means the
	// registrar's address.
	Domain string
	// AOR is the From URI of OPTIONS keep-alives; "" means
	// "sip:keepalive@" + Domain.
	AOR string
	// Disable turns mechanisms off; zero uses them all.
	Disable Mechanism
	// Relay says when media goes through a relay.
	Relay RelayMode
	// NewRelay makes the relay the agent allocates media through where the
	// plan needs one (turnrelay.New: a TURN client on each media socket);
	// nil: none (the plan then only says a relay is needed).
	NewRelay RelayMaker
	// RelayTransport is how the relay server is reached: zero picks UDP
	// from the media sockets, or TCP when UDP is blocked; sipmsg.UDP,
	// sipmsg.TCP or sipmsg.TLS insist on that one (TCP or TLS: the client
	// leg of RFC 8656 section 3.1, the relayed side stays UDP).
	RelayTransport sipmsg.Transport
	// OnRelayedMedia receives the media a relay on a stream (TCP, TLS)
	// brings, which does not come through a media socket's read loop: i is
	// the media socket's index, b the payload (only valid during the call)
	// and peer where it came from, as HandleMediaPacket returns relayed
	// media over UDP. It is called from the relay's reader, one packet at
	// a time per socket. Without it a relay is only reached over UDP.
	OnRelayedMedia func(i int, b []byte, peer netip.AddrPort)
	// StreamKeepAlive is how often a relay on a stream is kept open: below
	// the NAT's idle-TCP timeout, which STUN does not measure (the SIP
	// flow's keep-alive interval is a good value); zero means 25 s.
	StreamKeepAlive time.Duration
	// LifetimeMax, when not zero, measures the NAT binding lifetime up to
	// this long (RFC 5780 section 4.6); Start then takes about as long as
	// the lifetime. Zero skips it and the keep-alive interval is assumed.
	LifetimeMax time.Duration
	// Gateway is the router asked for port mappings; zero means the
	// default gateway.
	Gateway netip.Addr
	// MappingLifetime is the lease asked for port mappings; zero means 1 h.
	MappingLifetime time.Duration
	// NAT64 is the NAT64 prefix of an IPv6-only network (discovery.DetectNAT64).
	// Discovery then reaches IPv4 STUN addresses through it, the Contact
	// and SDP carry the IPv4 public address STUN finds through the NAT64
	// (what an IPv4-only far side can reach), and Reach gives the
	// synthesised IPv6 address (RFC 6052) to send to an IPv4 peer.
	NAT64 netip.Prefix
	// DetectNAT64, with NAT64 unset and an IPv6 SIP socket, makes Start
	// look for the NAT64 prefix first (discovery.DetectNAT64, the one
	// rule: the DNS64's answer for ipv4only.arpa through Resolver and the
	// Gateway's PCP PREFIX64 option, asked at once, whichever names a
	// prefix). What it finds is used as NAT64 and reported in Plan.NAT64;
	// finding none is no error (the network has no NAT64). It runs before
	// the other discovery and adds at most 5 s to Start, usually far less.
	DetectNAT64 bool
	// Resolver is the DNS64 DetectNAT64 asks; nil asks the system's DNS
	// servers.
	Resolver *net.Resolver
	// DialContext and ListenPacket, when set, make the sockets of gateway
	// requests and of the extra NAT-discovery probes (for a network
	// namespace or a VRF); nil uses the net package.
	DialContext  func(ctx context.Context, network, addr string) (net.Conn, error)
	ListenPacket func(ctx context.Context, network, addr string) (net.PacketConn, error)
	// UserAgent goes into OPTIONS keep-alives; "" means "sipnat".
	UserAgent string
	// OnEvent receives what the SIP stack must act on (re-register with a
	// new Contact, ...). It is called without the agent's lock held, from
	// timer and read-loop goroutines, and may call the agent.
	OnEvent func(Event)
	// Clock times keep-alives; nil means the system clock.
	Clock clock.Clock
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// ErrConfig is wrapped by New for an unusable Config.
var ErrConfig = errors.New("agent: bad config")

func (c *Config) check() error {
	if c.SIP == nil {
		return fmt.Errorf("%w: no SIP socket", ErrConfig)
	}
	if !c.Registrar.IsValid() || c.Registrar.Port() == 0 {
		return fmt.Errorf("%w: no registrar address", ErrConfig)
	}
	for i, m := range c.Media {
		if m == nil {
			return fmt.Errorf("%w: media socket %d is nil", ErrConfig, i)
		}
	}
	switch c.RelayTransport {
	case sipmsg.TransportUnknown, sipmsg.UDP, sipmsg.TCP, sipmsg.TLS:
	default:
		return fmt.Errorf("%w: relay transport %s (want UDP, TCP or TLS)", ErrConfig, c.RelayTransport)
	}
	for _, s := range c.STUN {
		if !s.IsValid() || s.Port() == 0 {
			return fmt.Errorf("%w: STUN server %v", ErrConfig, s)
		}
	}
	return nil
}

func (c *Config) allowed(m Mechanism) bool { return c.Disable&m == 0 }
