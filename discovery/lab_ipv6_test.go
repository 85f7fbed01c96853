package discovery

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/stretchr/testify/require"
)

// inbound6 sends from a fresh WAN socket to the client's IPv6 address and
// port and reports whether a LAN socket bound there received it.
func inbound6(t *testing.T, lab *netlab.Lab, port uint16) bool {
	t.Helper()
	rx := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client6, port))
	defer rx.Close()
	src := netip.AddrPortFrom(netlab.Peer6, uint16(30000+wanPort.Add(1)%20000))
	tx := lab.ListenUDP(netlab.WAN, src)
	defer tx.Close()
	msg := []byte("probe " + src.String())
	buf := make([]byte, 256)
	for try := 0; try < 3; try++ {
		_, err := tx.WriteToUDPAddrPort(msg, netip.AddrPortFrom(netlab.Client6, port))
		require.NoError(t, err)
		require.NoError(t, rx.SetReadDeadline(time.Now().Add(250*time.Millisecond)))
		for {
			n, _, err := rx.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if string(buf[:n]) == string(msg) {
				return true
			}
		}
	}
	return false
}

// TestLabPinhole: behind the lab's IPv6 firewall, the Mapper opens an
// inbound pinhole to the UA's IPv6 address over PCP (MAP, RFC 6887) and
// over UPnP IGD:2 (WANIPv6FirewallControl AddPinhole), renews it
// (UpdatePinhole, or a PCP MAP with the same nonce), and closes it on
// Unmap.
func TestLabPinhole(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: netlab.IPv6Firewall, UPnP: true})
	for i, p := range []Protocol{ProtoPCP, ProtoUPnP} {
		t.Run(p.String(), func(t *testing.T) {
			cfg := labConfig(lab, p)
			cfg.Gateway, cfg.LocalAddr = netlab.RouterLAN6, netlab.Client6
			m := NewMapper(cfg)
			defer m.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			port := uint16(48000 + 10*i)
			require.False(t, inbound6(t, lab, port), "open before the pinhole")
			mp, err := m.Map(ctx, "udp", port)
			require.NoError(t, err)
			require.Equal(t, netip.AddrPortFrom(netlab.Client6, port), mp.External, "a firewall does not translate")
			require.True(t, inbound6(t, lab, port), "dropped with the pinhole")
			require.NoError(t, m.Unmap(ctx, "udp", port))
			require.False(t, inbound6(t, lab, port), "open after Unmap")

			port++
			_, err = m.Map(ctx, "udp", port)
			require.NoError(t, err)
			m.Refresh(ctx)
			got := m.Mappings()
			require.Len(t, got, 1)
			require.Equal(t, 1, got[0].Renewals, "renewed")
			require.True(t, inbound6(t, lab, port), "dropped after the renewal")
			err = m.Unmap(ctx, "udp", port)
			if p == ProtoPCP {
				// miniupnpd 2.3.1 refuses to delete an IPv6 pinhole that a PCP
				// renewal updated: the delete's nonce check fails
				// (NOT_AUTHORIZED); the pinhole lapses with its lease.
				var re *ResultError
				require.ErrorAs(t, err, &re)
				require.Equal(t, 2, re.Code, "NOT_AUTHORIZED: %v", err)
				return
			}
			require.NoError(t, err)
			require.False(t, inbound6(t, lab, port), "open after Unmap of a renewed pinhole")
		})
	}
}

// TestLabPrefix64: the lab's real miniupnpd (Debian's 2.3.1) does not
// implement RFC 7225: it answers an ANNOUNCE that asks for PREFIX64, over
// IPv4 and over IPv6, with the request's empty option copied back, and
// Prefix64 says so (ErrNoPrefix64, not a timeout or a malformed answer);
// DetectNAT64 with only that source finds no NAT64. On the IPv6-only LAN
// behind the lab's NAT64 (where netlab runs no miniupnpd), DetectNAT64 asks
// the real DNS64 and an in-process PCP server that answers PREFIX64 at
// once, and takes whichever answers: both name the lab's prefix.
func TestLabPrefix64(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		ipv6    netlab.IPv6Mode
		gw, loc netip.Addr
	}{
		{"ipv4-miniupnpd", netlab.IPv6Off, netlab.RouterLAN, netip.Addr{}},
		{"ipv6-miniupnpd", netlab.IPv6Firewall, netlab.RouterLAN6, netlab.Client6},
		{"nat64-dns64-and-pcp", netlab.IPv6NAT64, netip.Addr{}, netip.Addr{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nat64 := c.ipv6 == netlab.IPv6NAT64
			lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: c.ipv6, UPnP: !nat64})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if nat64 {
				clk := clock.NewFake(time.Unix(1e9, 0))
				g := newFakeGW(t, clk, false, true)
				g.set(func(g *fakeGW) { g.prefix64 = []Prefix64{{Prefix: lab.Truth().NAT64Prefix}} })
				gcfg := testConfig(clk, g, nil, nil)
				n64, err := DetectNAT64(ctx, NAT64Config{Resolver: lab.Resolver(netlab.LAN), PCP: &gcfg})
				require.NoError(t, err)
				require.Equal(t, []netip.Prefix{lab.Truth().NAT64Prefix}, n64.Prefixes)
				require.Contains(t, []NAT64Source{FromDNS64, FromPCP}, n64.From)
				return
			}
			cfg := labConfig(lab, ProtoPCP)
			cfg.Gateway, cfg.LocalAddr = c.gw, c.loc
			m := NewMapper(cfg)
			defer m.Close()
			_, err := m.Prefix64(ctx)
			require.ErrorIs(t, err, ErrNoPrefix64, "miniupnpd answers the ANNOUNCE, without PREFIX64")
			require.ErrorContains(t, err, "empty option unprocessed")

			_, err = DetectNAT64(ctx, NAT64Config{NoDNS: true, PCP: &cfg})
			require.ErrorIs(t, err, ErrNoNAT64)
			require.ErrorIs(t, err, ErrNoPrefix64)
		})
	}
}
