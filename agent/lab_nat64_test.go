package agent

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/ipaddr"
)

// TestLabDetectNAT64: an agent on the IPv6-only LAN behind the lab's NAT64
// with Config.DetectNAT64 and no NAT64 prefix finds the prefix itself
// (discovery.DetectNAT64: the lab's DNS64 answers, the router speaks no
// PCP), reports it in the Plan, discovers its IPv4 public address through
// the NAT64 for the Contact, and reaches an IPv4 peer at its synthesised
// address.
func TestLabDetectNAT64(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "turnserver", "tayga", "unbound")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: netlab.IPv6NAT64, Coturn: true})
	truth := lab.Truth()
	stun, err := ipaddr.SynthesizeNAT64(truth.NAT64Prefix, netlab.Server1) // what the DNS64 gives for the server's name
	require.NoError(t, err)
	sip := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client6, 5062))
	a, err := New(Config{SIP: sip, Registrar: netip.AddrPortFrom(stun, netlab.CoturnPort),
		STUN:        []netip.AddrPort{netip.AddrPortFrom(stun, netlab.CoturnPort)},
		DetectNAT64: true, Resolver: lab.Resolver(netlab.LAN),
		Gateway: netlab.RouterLAN6, DialContext: lab.DialContext(netlab.LAN), ListenPacket: lab.ListenPacket(netlab.LAN)})
	require.NoError(t, err)
	defer a.Close()
	readLoop(t, a, make(chan []byte, 4))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := a.Start(ctx)
	require.NoError(t, err)
	t.Logf("plan:\n%s", p)
	require.Equal(t, &discovery.NAT64{Prefixes: []netip.Prefix{truth.NAT64Prefix}, From: discovery.FromDNS64}, p.NAT64)
	require.Contains(t, p.String(), "NAT64: prefix "+truth.NAT64Prefix.String()+" (from dns64)")
	require.Equal(t, truth.Public, p.Contact.Addr(), "the IPv4 address STUN found through the NAT64")
	peer := netip.AddrPortFrom(netlab.Server2, 6000)
	want, err := ipaddr.SynthesizeNAT64(truth.NAT64Prefix, peer.Addr())
	require.NoError(t, err)
	require.Equal(t, netip.AddrPortFrom(want, 6000), a.Reach(peer))
}

// TestDetectNAT64Off: without DetectNAT64, or on an IPv4 socket, the agent
// asks nothing and Plan.NAT64 stays nil.
func TestDetectNAT64Off(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		detect bool
		ip     net.IP
	}{{"not asked", false, net.IPv6loopback}, {"an IPv4 socket", true, net.IPv4(127, 0, 0, 1)}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: c.ip})
			require.NoError(t, err)
			defer conn.Close()
			resolver := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
				t.Error("the resolver was asked")
				return nil, net.ErrClosed
			}}
			a, err := New(Config{SIP: conn, Registrar: netip.MustParseAddrPort("127.0.0.1:9"), Disable: STUN | PortMapping,
				DetectNAT64: c.detect, Resolver: resolver})
			require.NoError(t, err)
			defer a.Close()
			readLoop(t, a, make(chan []byte, 4))
			p, err := a.Start(context.Background())
			require.NoError(t, err)
			require.Nil(t, p.NAT64)
		})
	}
}
