package discovery

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/clock"
)

// MapperConfig configures a Mapper. The zero value works: the default gateway,
// PCP, NAT-PMP and UPnP tried in that order, two-hour leases, the system
// clock, no logging.
type MapperConfig struct {
	// Gateway is the router to ask. The zero value means the default
	// gateway of the host. UPnP devices are accepted only at this address.
	Gateway netip.Addr
	// LocalAddr is the UA's address facing the gateway (the internal
	// client of UPnP and PCP). The zero value means the one routing picks.
	LocalAddr netip.Addr
	// Protocols lists the protocols to use, in order of preference. nil
	// means PCP, NAT-PMP, UPnP.
	Protocols []Protocol
	// Lifetime is the lease asked for. 0 means two hours. Gateways may
	// grant less (or, UPnP only, a permanent mapping).
	Lifetime time.Duration
	// Description is the UPnP port-mapping description; "" means "sipnat".
	Description string

	// Clock schedules renewals; nil means the system clock.
	Clock clock.Clock
	// Logger receives debug and info records; nil discards them.
	Logger *slog.Logger
	// OnEvent, when set, receives every event. It is called from the
	// Mapper's own goroutines (or, with a fake clock, from Advance) after
	// the Mapper's locks are released; it must not block for long.
	OnEvent func(Event)

	// HTTPClient, when set, is copied for UPnP requests; its transport is
	// wrapped so that every body is bounded in size and XML depth.
	HTTPClient *http.Client
	// DialContext, when set, creates the sockets of UPnP HTTP requests (if
	// HTTPClient has no transport of its own) and of NAT-PMP/PCP requests.
	// Tests use it to run the Mapper inside a network namespace.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ListenPacket, when set, creates the SSDP and announcement sockets.
	ListenPacket func(ctx context.Context, network, addr string) (net.PacketConn, error)

	// PMPTimeout bounds one NAT-PMP or PCP request with its
	// retransmissions; 0 means 2 s.
	PMPTimeout time.Duration
	// UPnPTimeout bounds the SSDP wait and each HTTP request; 0 means 2 s.
	UPnPTimeout time.Duration
	// ProbeCacheTTL is how long what the gateway speaks is remembered;
	// 0 means 10 minutes.
	ProbeCacheTTL time.Duration
	// PMPPort is the gateway's NAT-PMP/PCP port; 0 means 5351.
	PMPPort uint16
	// SSDPAddrs are where M-SEARCH requests go; nil means the SSDP group
	// 239.255.255.250:1900 and the gateway's port 1900.
	SSDPAddrs []netip.AddrPort
	// AnnounceAddr, when set (usually "0.0.0.0:5350"), is where the Mapper
	// listens for the gateway's unsolicited PCP ANNOUNCE and NAT-PMP
	// address announcements (sent to 224.0.0.1:5350 after a reboot or an
	// address change) and re-creates its mappings when one arrives.
	AnnounceAddr string
}

func (c *MapperConfig) lifetime() time.Duration {
	if c.Lifetime <= 0 {
		return 2 * time.Hour
	}
	return c.Lifetime
}

func (c *MapperConfig) pmpTimeout() time.Duration {
	if c.PMPTimeout <= 0 {
		return 2 * time.Second
	}
	return c.PMPTimeout
}

func (c *MapperConfig) upnpTimeout() time.Duration {
	if c.UPnPTimeout <= 0 {
		return 2 * time.Second
	}
	return c.UPnPTimeout
}

func (c *MapperConfig) probeTTL() time.Duration {
	if c.ProbeCacheTTL <= 0 {
		return 10 * time.Minute
	}
	return c.ProbeCacheTTL
}

func (c *MapperConfig) protocols() []Protocol {
	if len(c.Protocols) == 0 {
		return []Protocol{ProtoPCP, ProtoNATPMP, ProtoUPnP}
	}
	return c.Protocols
}

func (c *MapperConfig) description() string {
	if c.Description == "" {
		return "sipnat"
	}
	return c.Description
}

func (m *Mapper) pmpPort() uint16 {
	if m.cfg.PMPPort == 0 {
		return pmpPort
	}
	return m.cfg.PMPPort
}
