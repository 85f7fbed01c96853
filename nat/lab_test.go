package nat

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
)

// Ports of our server in the lab's WAN node (stund has 3478/3479, coturn 3480/3481).
const labOurPort, labOurAltPort = 3490, 3491

// labServer runs our Server in the lab's WAN node on Server1/Server2.
func labServerTB(t testing.TB, lab *netlab.Lab) *Server {
	t.Helper()
	return labServerOn(t, lab, netlab.Server1, netlab.Server2)
}

// labServerOn runs our Server in the lab's WAN node on addresses a1 and a2.
func labServerOn(t testing.TB, lab *netlab.Lab, a1, a2 netip.Addr) *Server {
	t.Helper()
	ls := func(a netip.Addr, p uint16) net.PacketConn {
		return lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(a, p))
	}
	s, err := NewServer(ServerConfig{
		Primary: ls(a1, labOurPort), AltPort: ls(a1, labOurAltPort),
		AltAddr: ls(a2, labOurPort), AltBoth: ls(a2, labOurAltPort),
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() { _ = s.Close(); <-done })
	return s
}

// labListen opens a UDP socket on the lab client's address inside the LAN.
func labListen(lab *netlab.Lab) (pc *net.UDPConn, err error) {
	err = lab.Do(netlab.LAN, func() (err error) {
		pc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.Truth().Client, 0)))
		return err
	})
	return pc, err
}

// labDiscover runs DiscoverWith from the lab's client against server. The
// benchmark uses Discover's default ProbeTimeout (probe 0), the tests
// labProbeTimeout, since they run many labs at once on a small machine.
func labDiscover(ctx context.Context, lab *netlab.Lab, server netip.AddrPort, lifetime, probe time.Duration) (*Result, error) {
	conn, err := labListen(lab)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return DiscoverWith(ctx, conn, DiscoverConfig{
		Servers:      []netip.AddrPort{server},
		LifetimeMax:  lifetime,
		ProbeTimeout: probe,
		ListenPacket: func(context.Context, string, string) (net.PacketConn, error) {
			return labListen(lab)
		},
		GatewayExternal: lab.Truth().RouterWAN,
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
		labCase{"eim-adf+loss20", netlab.Config{Kind: netlab.EIMADF, LossPercent: 20}},
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
			srv := labServerTB(t, lab)
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
			var checks []labCheck
			for _, s := range servers {
				lt := lifetime
				if s.classic {
					lt = 0 // RFC 3489 servers have no RESPONSE-PORT
				}
				checks = append(checks, labCheck{s.name, func() func(t *testing.T) {
					return discoverCheck(lab, s.name, s.addr, s.classic, lt)
				}})
			}
			if cfg.Timeout == 0 && !cfg.CGNAT && cfg.CGNKind == "" && cfg.LossPercent == 0 {
				checks = append(checks, interopChecks(lab)...)
			}
			if cfg.Timeout > 0 {
				checks = append(checks, interopLifetimeChecks(lab)...)
			}
			if truth.Kind != netlab.Blocked {
				checks = append(checks, twoServerCheck(t, lab))
			}
			runConcurrently(t, checks)
		})
	}
}

// labProbeTimeout is Discover's ProbeTimeout in the testbed tests.
const labProbeTimeout = 2 * time.Second

// labCheck is one check against a lab: work runs concurrently with the
// lab's other checks (in its own goroutine, so t.Parallel's limit does not
// serialise the waiting) and returns the assertions, which run as subtest name.
type labCheck struct {
	name string
	work func() (verify func(t *testing.T))
}

// runConcurrently runs every check's work at once, then each verification
// as a subtest.
func runConcurrently(t *testing.T, checks []labCheck) {
	verify := make([]chan func(*testing.T), len(checks))
	for i, c := range checks {
		verify[i] = make(chan func(*testing.T), 1)
		go func() { verify[i] <- c.work() }()
	}
	for i, c := range checks {
		t.Run(c.name, <-verify[i])
	}
}

// discoverCheck classifies the lab's NAT against server and returns the
// comparison with the lab's truth.
func discoverCheck(lab *netlab.Lab, name string, server netip.AddrPort, classic bool, lifetime time.Duration) func(t *testing.T) {
	truth := lab.Truth()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if truth.Kind == netlab.Blocked {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		start := time.Now()
		res, err := labDiscover(ctx, lab, server, lifetime, labProbeTimeout)
		took := time.Since(start)
		return func(t *testing.T) {
			require.ErrorIs(t, err, ErrNoResponse)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Less(t, took, 4*time.Second)
			require.Equal(t, Blocked, res.Mapping)
			require.Equal(t, UDPBlocked, res.Classic)
		}
	}
	res, err := labDiscover(ctx, lab, server, lifetime, labProbeTimeout)
	return func(t *testing.T) {
		require.NoError(t, err)
		t.Logf("%s against %s:\n%s", truth, name, res)
		require.Equal(t, truth.Public, res.Public.Addr(), "public address")
		require.Equal(t, classicOfTruth(truth), res.Classic, "RFC 3489 type")
		if classic {
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
		if lifetime > 0 {
			require.GreaterOrEqual(t, res.Lifetime, 4*time.Second, "lifetime")
			require.LessOrEqual(t, res.Lifetime, 7*time.Second, "lifetime")
		}
	}
}

// twoServerCheck: two plain servers (no alternate address) on Server1 and
// Server2; Discover compares the mappings ("mapping varies by destination").
func twoServerCheck(t *testing.T, lab *netlab.Lab) labCheck {
	var servers []netip.AddrPort
	for _, a := range []netip.Addr{netlab.Server1, netlab.Server2} {
		s, err := NewServer(ServerConfig{Primary: lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(a, labOurPort+2))})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- s.Serve(context.Background()) }()
		t.Cleanup(func() { _ = s.Close(); <-done })
		servers = append(servers, s.Addrs()[0])
	}
	return labCheck{"two-server", func() func(t *testing.T) {
		truth := lab.Truth()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := labListen(lab)
		if err != nil {
			return func(t *testing.T) { require.NoError(t, err) }
		}
		defer conn.Close()
		res, err := DiscoverWith(ctx, conn, DiscoverConfig{Servers: servers, ProbeTimeout: labProbeTimeout})
		return func(t *testing.T) {
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
		}
	}}
}
