package nat

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/ipaddr"
)

// TestLabIPv6: discovery over IPv6 through the lab's RFC 6092 firewall
// (no translation, address-and-port-dependent filtering), through NPTv6 and
// NAT66 (endpoint-independent mapping), against coturn's RFC 5780 service
// on the WAN's two IPv6 addresses and against our own server on them.
func TestLabIPv6(t *testing.T) {
	t.Parallel()
	for _, mode := range []netlab.IPv6Mode{netlab.IPv6Firewall, netlab.IPv6NPT, netlab.IPv6NAT66} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: mode, Coturn: true})
			tr := lab.Truth()
			labServerOn(t, lab, netlab.Server1V6, netlab.Server2V6)
			listen := func() (*net.UDPConn, error) { return labListen6(lab) }
			for _, server := range []netip.AddrPort{
				netip.AddrPortFrom(netlab.Server1V6, netlab.CoturnPort),
				netip.AddrPortFrom(netlab.Server1V6, labOurPort),
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				conn, err := listen()
				require.NoError(t, err)
				res, err := DiscoverWith(ctx, conn, DiscoverConfig{
					Servers: []netip.AddrPort{server}, ProbeTimeout: labProbeTimeout,
					ListenPacket: func(context.Context, string, string) (net.PacketConn, error) { return listen() },
				})
				cancel()
				conn.Close()
				require.NoError(t, err, "against %s", server)
				require.Equal(t, tr.Public6, res.Public.Addr(), "public address from %s", server)
				wantMapping := EndpointIndependent
				if tr.Mapping6 == netlab.NoNAT {
					wantMapping = None
				}
				require.Equal(t, wantMapping, res.Mapping, "mapping from %s:\n%s", server, res)
				require.Equal(t, AddressAndPortDependent, res.Filtering, "filtering from %s:\n%s", server, res)
			}
		})
	}
}

// TestLabIPv6FirewallLifetime: the firewall's UDP state timeout (3 s) is
// measured like a NAT binding lifetime, so the SIP verdict's keep-alive
// interval keeps the flow to the proxy open.
func TestLabIPv6FirewallLifetime(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: netlab.IPv6Firewall, Coturn: true, Timeout: 3 * time.Second})
	listen := func() (*net.UDPConn, error) { return labListen6(lab) }
	conn, err := listen()
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	res, err := DiscoverWith(ctx, conn, DiscoverConfig{
		Servers: []netip.AddrPort{netip.AddrPortFrom(netlab.Server1V6, netlab.CoturnPort)}, ProbeTimeout: labProbeTimeout,
		LifetimeMax:  8 * time.Second,
		ListenPacket: func(context.Context, string, string) (net.PacketConn, error) { return listen() },
	})
	require.NoError(t, err)
	require.Equal(t, None, res.Mapping)
	require.Equal(t, AddressAndPortDependent, res.Filtering)
	require.GreaterOrEqual(t, res.Lifetime, 2*time.Second, "%s", res)
	require.LessOrEqual(t, res.LifetimeBound, 5*time.Second, "%s", res)
	require.Less(t, res.SIP.KeepAlive, 3*time.Second, "%s", res)
	require.Contains(t, res.SIP.Summary, "firewall")
}

// TestLabNAT64: on the IPv6-only LAN, discovery through the lab's NAT64
// (its prefix as discovery.DetectNAT64 finds it there) against coturn
// on the IPv4 WAN (at its synthesised address) finds the IPv4 public
// address and the behaviour of the IPv4 NAT behind tayga.
func TestLabNAT64(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: netlab.IPv6NAT64, Coturn: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prefixes := []netip.Prefix{lab.Truth().NAT64Prefix}

	listen := func() (*net.UDPConn, error) { return labListen6(lab) }
	conn, err := listen()
	require.NoError(t, err)
	defer conn.Close()
	srv, err := ipaddr.SynthesizeNAT64(prefixes[0], netlab.Server1)
	require.NoError(t, err)
	res, err := DiscoverWith(ctx, conn, DiscoverConfig{
		Servers: []netip.AddrPort{netip.AddrPortFrom(srv, netlab.CoturnPort)}, ProbeTimeout: labProbeTimeout,
		NAT64:        prefixes[0],
		ListenPacket: func(context.Context, string, string) (net.PacketConn, error) { return listen() },
	})
	require.NoError(t, err)
	require.Equal(t, netlab.Public, res.Public.Addr(), "%s", res)
	require.Equal(t, MethodRFC5780, res.Method)
	require.Equal(t, EndpointIndependent, res.Mapping, "%s", res)
	require.Equal(t, AddressAndPortDependent, res.Filtering, "%s", res)
	require.Contains(t, res.String(), "NAT64")
}

// labListen6 opens a UDP socket on the lab client's IPv6 address in the LAN.
func labListen6(lab *netlab.Lab) (pc *net.UDPConn, err error) {
	err = lab.Do(netlab.LAN, func() (err error) {
		pc, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netlab.Client6, 0)))
		return err
	})
	return pc, err
}
