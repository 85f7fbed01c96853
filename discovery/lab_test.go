package discovery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/nat"
	"github.com/stretchr/testify/require"
)

// Testbed tests: the Mapper runs in this process with its sockets inside
// the lab's LAN namespace and talks to a real miniupnpd (UPnP IGD v1,
// NAT-PMP and PCP) on the home router.

// labConfig binds a Mapper config to the lab's LAN namespace.
func labConfig(lab *netlab.Lab, protos ...Protocol) MapperConfig {
	return MapperConfig{
		Gateway:      netlab.RouterLAN,
		Protocols:    protos,
		DialContext:  lab.DialContext(netlab.LAN),
		ListenPacket: lab.ListenPacket(netlab.LAN),
		Lifetime:     10 * time.Minute,
	}
}

var wanPort atomic.Uint32

// delivered sends a datagram from a fresh WAN socket (a new flow, so no
// conntrack entry of an earlier check can carry it) to the public address
// and port, and reports whether rx, the LAN listener on the internal port,
// got it.
func delivered(t *testing.T, lab *netlab.Lab, rx *net.UDPConn, public uint16) bool {
	t.Helper()
	src := netip.AddrPortFrom(netlab.Server1, uint16(30000+wanPort.Add(1)%20000))
	tx := lab.ListenUDP(netlab.WAN, src)
	defer tx.Close()
	dst := netip.AddrPortFrom(netlab.Public, public)
	msg := []byte("probe " + src.String())
	buf := make([]byte, 256)
	for try := 0; try < 3; try++ {
		_, err := tx.WriteToUDPAddrPort(msg, dst)
		require.NoError(t, err)
		require.NoError(t, rx.SetReadDeadline(time.Now().Add(250*time.Millisecond)))
		for {
			n, _, err := rx.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				require.NoError(t, err)
			}
			if string(buf[:n]) == string(msg) {
				return true
			}
		}
	}
	return false
}

func TestLabMapEachProtocol(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, UPnP: true})
	for i, tc := range []struct {
		name string
		p    Protocol
	}{
		{"upnp", ProtoUPnP},
		{"upnp-AddPortMapping", ProtoUPnP}, // the IGD v1 action on miniupnpd's WANIPConnection:2
		{"nat-pmp", ProtoNATPMP},
		{"pcp", ProtoPCP},
	} {
		p := tc.p
		t.Run(tc.name, func(t *testing.T) {
			port := uint16(41000 + i)
			rx := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netip.IPv4Unspecified(), port))
			require.False(t, delivered(t, lab, rx, port), "delivered before the mapping")
			events := make(chan Event, 8)
			cfg := labConfig(lab, p)
			cfg.OnEvent = func(e Event) { events <- e }
			m := NewMapper(cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tc.name == "upnp-AddPortMapping" {
				pr, err := m.Probe(ctx)
				require.NoError(t, err)
				require.Equal(t, svcWANIP2, pr.UPnPService)
				m.mu.Lock()
				m.igd.v2 = nil
				m.mu.Unlock()
			}
			mp, err := m.Map(ctx, "udp", port)
			require.NoError(t, err)
			require.Equal(t, p, mp.Protocol)
			require.Equal(t, netip.AddrPortFrom(netlab.Public, port), mp.External)
			require.Equal(t, netip.AddrPortFrom(netlab.Client, port), mp.Internal)
			require.Equal(t, EventMapped, (<-events).Kind)
			require.True(t, delivered(t, lab, rx, port), "dropped after the mapping")
			require.NoError(t, m.Unmap(ctx, "udp", port))
			require.False(t, delivered(t, lab, rx, port), "delivered after delete")
			require.NoError(t, m.Close())
		})
	}
}

func TestLabSymmetricNAT(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.APDM, UPnP: true})
	const port = 42000
	rx := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netip.IPv4Unspecified(), port))
	m := NewMapper(labConfig(lab)) // whatever the gateway speaks
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mp, err := m.Map(ctx, "udp", port)
	require.NoError(t, err)
	require.Equal(t, ProtoPCP, mp.Protocol, "PCP is preferred")
	require.True(t, delivered(t, lab, rx, mp.External.Port()), "a mapping behind apdm must still deliver")
	// The mapping gives a stable public port where the symmetric NAT gives none.
	ch := Reconcile(Observations{Local: netip.AddrPortFrom(netlab.Client, port), Mapping: &mp})
	require.Equal(t, SourceMapping, ch.Source, ch.Reason)
	require.True(t, ch.Reachable)
}

// TestLabRenewal keeps a 4-second lease alive past its first expiry on the
// real clock, over each protocol, while a lease nobody renews (same router,
// same lifetime) is gone: miniupnpd does expire leases.
func TestLabRenewal(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, UPnP: true, UPnPMinLifetime: 2})
	for i, p := range []Protocol{ProtoPCP, ProtoNATPMP, ProtoUPnP} {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			kept, dropped := uint16(43000+i), uint16(43100+i)
			rxKept := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netip.IPv4Unspecified(), kept))
			rxDropped := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netip.IPv4Unspecified(), dropped))
			events := make(chan Event, 16)
			cfg := labConfig(lab, p)
			cfg.Lifetime = 4 * time.Second
			cfg.OnEvent = func(e Event) { events <- e }
			m := NewMapper(cfg)
			t.Cleanup(func() { m.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			mp, err := m.Map(ctx, "udp", kept)
			require.NoError(t, err)
			require.Equal(t, 4*time.Second, mp.Lifetime)
			// The control: one request with the same lifetime, never renewed.
			switch p {
			case ProtoPCP:
				_, err = m.pcpMap(ctx, netlab.RouterLAN, netlab.Client, [12]byte{9}, false, dropped, dropped, netip.Addr{}, 4)
			case ProtoNATPMP:
				_, err = m.pmpMap(ctx, netlab.RouterLAN, false, dropped, dropped, 4)
			case ProtoUPnP:
				m.mu.Lock()
				g := m.igd
				m.mu.Unlock()
				_, _, err = m.upnpAdd(ctx, g, false, netlab.Client, dropped, dropped, 4, "control")
			}
			require.NoError(t, err)
			require.True(t, delivered(t, lab, rxDropped, dropped))

			require.Equal(t, EventMapped, (<-events).Kind)
			deadline := time.After(15 * time.Second)
			for renewals := 0; renewals < 3; {
				select {
				case e := <-events:
					require.Equal(t, EventRenewed, e.Kind, e.String())
					renewals++
				case <-deadline:
					t.Fatal("no renewals")
				}
			}
			// Three renewals at half the lease: more than 4 s since the mapping.
			require.Greater(t, time.Since(mp.Obtained), 4*time.Second)
			require.True(t, delivered(t, lab, rxKept, kept), "renewed lease expired")
			require.False(t, delivered(t, lab, rxDropped, dropped), "unrenewed lease did not expire")
		})
	}
}

func TestLabGatewayRestart(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, UPnP: true})
	ports := map[Protocol]uint16{ProtoPCP: 44000, ProtoNATPMP: 44100, ProtoUPnP: 44200}
	events := map[Protocol]chan Event{}
	rx := map[Protocol]*net.UDPConn{}
	mappers := map[Protocol]*Mapper{}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	for p, port := range ports {
		rx[p] = lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netip.IPv4Unspecified(), port))
		ch := make(chan Event, 64)
		events[p] = ch
		cfg := labConfig(lab, p)
		cfg.OnEvent = func(e Event) { ch <- e }
		m := NewMapper(cfg)
		t.Cleanup(func() { m.Close() })
		mappers[p] = m
		_, err := m.Map(ctx, "udp", port)
		require.NoError(t, err)
		require.True(t, delivered(t, lab, rx[p], port))
	}
	// The epoch check tolerates 2 s of drift (RFC 6887 8.5), so a restart
	// is only recognisable once the router has been up a few seconds:
	// renew until its epoch says so.
	for _, p := range []Protocol{ProtoPCP, ProtoNATPMP} {
		for {
			mappers[p].Refresh(ctx)
			if mappers[p].Mappings()[0].Epoch >= 5 {
				break
			}
			require.NoError(t, ctx.Err())
			time.Sleep(250 * time.Millisecond)
		}
	}
	lab.RestartMiniupnpd()
	waitKind := func(p Protocol, k EventKind) Event {
		t.Helper()
		for {
			select {
			case e := <-events[p]:
				if e.Kind == k {
					return e
				}
			case <-ctx.Done():
				t.Fatalf("%s: no %s event", p, k)
			}
		}
	}
	// Each mapper learns it at its next renewal (what the timer does at
	// half the lease); PCP and NAT-PMP see the epoch go back.
	for _, p := range []Protocol{ProtoPCP, ProtoNATPMP, ProtoUPnP} {
		require.False(t, delivered(t, lab, rx[p], ports[p]), "%s mapping survived the restart", p)
		mappers[p].Refresh(ctx)
	}
	for _, p := range []Protocol{ProtoPCP, ProtoNATPMP} {
		e := waitKind(p, EventGatewayRestarted)
		t.Logf("%s: %s", p, e)
		require.Equal(t, 1, e.Mapping.Restarts)
	}
	for p, port := range ports {
		require.True(t, delivered(t, lab, rx[p], port), "%s mapping did not come back", p)
	}
}

func TestLabCGNAT(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, CGNAT: true, UPnP: true, Stund: true})
	const port = 45060
	sip := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netip.IPv4Unspecified(), port))
	stun := nat.NewClient(sip, nat.ClientConfig{})
	t.Cleanup(func() { stun.Close() })
	m := NewMapper(labConfig(lab))
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	ext, from, err := m.ExternalAddr(ctx)
	require.NoError(t, err)
	require.Equal(t, netlab.RouterCGN, ext, "the gateway reports its shared-space WAN address (via %s)", from)

	mp, err := m.Map(ctx, "udp", port)
	require.NoError(t, err)
	mapped, err := stun.Binding(ctx, netip.AddrPortFrom(netlab.Server1, netlab.StundPort))
	require.NoError(t, err)
	c := Reconcile(Observations{Local: netip.AddrPortFrom(netlab.Client, port), Mapping: &mp, Gateway: ext, GatewayFrom: from, STUN: mapped})
	t.Logf("choice: %s", c)
	require.True(t, c.CGNAT, c.Reason)
	require.Equal(t, SourceSTUN, c.Source)
	require.Equal(t, netlab.Public, c.Contact.Addr())
	require.Equal(t, netlab.Public, c.Observations.STUN.Addr())
	require.NotNil(t, c.Observations.Mapping)
	require.Equal(t, netlab.RouterCGN, c.Observations.Mapping.External.Addr())
	require.False(t, c.Reachable)
	require.True(t, c.NeedsKeepalive)
}
