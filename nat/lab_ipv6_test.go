package nat

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/stretchr/testify/require"
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
			ls := func(a netip.Addr, p uint16) net.PacketConn {
				return lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(a, p))
			}
			s, err := NewServer(ServerConfig{
				Primary: ls(netlab.Server1V6, labOurPort), AltPort: ls(netlab.Server1V6, labOurAltPort),
				AltAddr: ls(netlab.Server2V6, labOurPort), AltBoth: ls(netlab.Server2V6, labOurAltPort),
			})
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- s.Serve(context.Background()) }()
			t.Cleanup(func() { _ = s.Close(); <-done })

			listen := func() (pc *net.UDPConn, err error) {
				err = lab.Do(netlab.LAN, func() (err error) {
					pc, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tr.Client6, 0)))
					return err
				})
				return pc, err
			}
			for _, server := range []netip.AddrPort{
				netip.AddrPortFrom(netlab.Server1V6, netlab.CoturnPort),
				netip.AddrPortFrom(netlab.Server1V6, labOurPort),
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				conn, err := listen()
				require.NoError(t, err)
				res, err := DiscoverWith(ctx, conn, DiscoverConfig{
					Servers: []netip.AddrPort{server}, ProbeTimeout: labProbeTimeout,
					ListenPacket: func(context.Context) (net.PacketConn, error) { return listen() },
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
