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

// Ports of our server in the lab's WAN node (stund has 3478/3479, coturn 3480/3481).
const labOurPort, labOurAltPort = 3490, 3491

// labServer runs our Server in the lab's WAN node on Server1/Server2.
func labServer(t *testing.T, lab *netlab.Lab) *Server { return labServerTB(t, lab) }

func labServerTB(t testing.TB, lab *netlab.Lab) *Server {
	t.Helper()
	ls := func(a netip.Addr, p uint16) net.PacketConn {
		return lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(a, p))
	}
	s, err := NewServer(ServerConfig{
		Primary: ls(netlab.Server1, labOurPort), AltPort: ls(netlab.Server1, labOurAltPort),
		AltAddr: ls(netlab.Server2, labOurPort), AltBoth: ls(netlab.Server2, labOurAltPort),
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() { _ = s.Close(); <-done })
	return s
}

// labDiscover runs DiscoverWith from the lab's client against server.
func labDiscover(ctx context.Context, t testing.TB, lab *netlab.Lab, server netip.AddrPort, lifetime time.Duration) (*Result, error) {
	truth := lab.Truth()
	conn := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(truth.Client, 0))
	return DiscoverWith(ctx, conn, DiscoverConfig{
		Servers:      []netip.AddrPort{server},
		LifetimeMax:  lifetime,
		ProbeTimeout: labProbeTimeout(t),
		ListenPacket: func(context.Context) (pc net.PacketConn, err error) {
			err = lab.Do(netlab.LAN, func() (err error) {
				pc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(truth.Client, 0)))
				return err
			})
			return pc, err
		},
		GatewayExternal: truth.RouterWAN,
	})
}

// classicOfTruth is the RFC 3489 type the lab's truth implies.
func classicOfTruth(tr netlab.Truth) ClassicType {
	var m, f Behavior
	_ = m.UnmarshalText([]byte(tr.Mapping))
	_ = f.UnmarshalText([]byte(tr.Filtering))
	return classicOf(m, f)
}

type labCase struct {
	name string
	cfg  netlab.Config
}

func labCases() []labCase {
	var cs []labCase
	for _, k := range netlab.Kinds {
		cs = append(cs, labCase{string(k), netlab.Config{Kind: k}})
		if k != netlab.None && k != netlab.Blocked {
			cs = append(cs, labCase{string(k) + "+hairpin", netlab.Config{Kind: k, Hairpin: true}})
		}
	}
	cs = append(cs,
		labCase{"eim-apdf+cgnat", netlab.Config{Kind: netlab.EIMAPDF, CGNAT: true}},
		labCase{"apdm+cgnat", netlab.Config{Kind: netlab.APDM, CGNAT: true}},
		labCase{"eim-eif+cgn-eim-apdf", netlab.Config{Kind: netlab.EIMEIF, CGNKind: netlab.EIMAPDF}},
		labCase{"eim-apdf+timeout5", netlab.Config{Kind: netlab.EIMAPDF, Timeout: 5 * time.Second}},
		labCase{"eim-eif+timeout5", netlab.Config{Kind: netlab.EIMEIF, Timeout: 5 * time.Second}},
	)
	return cs
}

// TestLabDiscover classifies every NAT kind of the testbed, with hairpin on
// and off, behind a CGNAT and with a 5 s binding timeout, against our server,
// coturn (RFC 5780) and stund (RFC 3489, classic type only), and compares
// with the lab's truth. One lab per configuration, shared by the subtests.
func TestLabDiscover(t *testing.T) {
	t.Parallel()
	for _, lc := range labCases() {
		t.Run(lc.name, func(t *testing.T) {
			t.Parallel()
			cfg := lc.cfg
			cfg.Stund, cfg.Coturn = true, true
			lab := netlab.New(t, cfg)
			srv := labServer(t, lab)
			truth := lab.Truth()
			lifetime := time.Duration(0)
			if cfg.Timeout > 0 {
				lifetime = 12 * time.Second
			}
			servers := []struct {
				name    string
				addr    netip.AddrPort
				classic bool
			}{
				{"ours", srv.Addrs()[0], false},
				{"coturn", netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort), false},
				{"stund", netip.AddrPortFrom(netlab.Server1, netlab.StundPort), true},
			}
			if cfg.Timeout == 0 && !cfg.CGNAT && cfg.CGNKind == "" {
				interopSubtests(t, lab)
			}
			if cfg.Timeout > 0 {
				interopLifetimeSubtests(t, lab)
			}
			if truth.Kind != netlab.Blocked {
				twoServerSubtest(t, lab)
			}
			for _, s := range servers {
				t.Run(s.name, func(t *testing.T) {
					t.Parallel()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					lt := lifetime
					if s.classic {
						lt = 0 // RFC 3489 servers have no RESPONSE-PORT
					}
					if truth.Kind == netlab.Blocked {
						ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
						defer cancel()
						start := time.Now()
						res, err := labDiscover(ctx, t, lab, s.addr, lt)
						require.ErrorIs(t, err, ErrNoResponse)
						require.Less(t, time.Since(start), 4*time.Second)
						require.Equal(t, Blocked, res.Mapping)
						require.Equal(t, UDPBlocked, res.Classic)
						return
					}
					res, err := labDiscover(ctx, t, lab, s.addr, lt)
					require.NoError(t, err)
					t.Logf("%s against %s:\n%s", truth, s.name, res)
					require.Equal(t, truth.Public, res.Public.Addr(), "public address")
					require.Equal(t, classicOfTruth(truth), res.Classic, "RFC 3489 type")
					if s.classic {
						require.Equal(t, MethodRFC3489, res.Method)
						return
					}
					require.Equal(t, MethodRFC5780, res.Method)
					require.Equal(t, string(truth.Mapping), res.Mapping.String(), "mapping")
					require.Equal(t, string(truth.Filtering), res.Filtering.String(), "filtering")
					require.Equal(t, truth.CGNAT, res.CGNAT, "CGNAT")
					if truth.Kind != netlab.None {
						require.NotNil(t, res.Hairpin)
						require.Equal(t, truth.Hairpin, *res.Hairpin, "hairpin")
						require.Equal(t, truth.PortPreservation, res.PortPreserved, "port preservation")
					}
					if lt > 0 {
						require.GreaterOrEqual(t, res.Lifetime, 4*time.Second, "lifetime")
						require.LessOrEqual(t, res.Lifetime, 7*time.Second, "lifetime")
					}
				})
			}
		})
	}
}

// labProbeTimeout is Discover's default for the benchmark, and 2 s for the
// tests, which run many labs at once on a small machine.
func labProbeTimeout(tb testing.TB) time.Duration {
	if _, ok := tb.(*testing.B); ok {
		return 0
	}
	return 2 * time.Second
}

// twoServerSubtest: two plain servers (no alternate address) on Server1 and
// Server2; Discover compares the mappings ("mapping varies by destination").
func twoServerSubtest(t *testing.T, lab *netlab.Lab) {
	t.Run("two-server", func(t *testing.T) {
		t.Parallel()
		var servers []netip.AddrPort
		for _, a := range []netip.Addr{netlab.Server1, netlab.Server2} {
			s, err := NewServer(ServerConfig{Primary: lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(a, labOurPort+2))})
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- s.Serve(context.Background()) }()
			t.Cleanup(func() { _ = s.Close(); <-done })
			servers = append(servers, s.Addrs()[0])
		}
		truth := lab.Truth()
		conn := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(truth.Client, 0))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := DiscoverWith(ctx, conn, DiscoverConfig{Servers: servers, ProbeTimeout: labProbeTimeout(t)})
		require.NoError(t, err)
		require.Equal(t, MethodTwoServer, res.Method)
		varies := truth.Mapping == netlab.AddressDependent || truth.Mapping == netlab.AddressAndPortDependent
		require.Equal(t, varies, res.MappingVaries, "mapping varies by destination")
		if varies {
			require.Equal(t, Symmetric, res.Classic)
			require.True(t, res.SIP.MediaRelay)
		} else {
			require.Equal(t, string(truth.Mapping), res.Mapping.String())
		}
	})
}
