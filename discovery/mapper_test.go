package discovery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
)

var t0 = time.Date(2026, 11, 22, 22, 0, 0, 0, time.UTC)

func TestMapperProtocols(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		pmp, pcp bool
		want     Protocol
	}{
		{"pcp and nat-pmp prefers pcp", true, true, ProtoPCP},
		{"nat-pmp only", true, false, ProtoNATPMP},
		{"pcp only", false, true, ProtoPCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := clock.NewFake(t0)
			g := newFakeGW(t, clock, tc.pmp, tc.pcp)
			events := make(chan Event, 16)
			cfg := testConfig(clock, g, nil, events)
			cfg.Protocols = []Protocol{ProtoPCP, ProtoNATPMP}
			m := NewMapper(cfg)
			ctx := context.Background()
			mp, err := m.Map(ctx, "udp", 5060)
			require.NoError(t, err)
			require.Equal(t, tc.want, mp.Protocol)
			require.Equal(t, netip.MustParseAddrPort("203.0.113.1:5060"), mp.External)
			require.Equal(t, time.Hour, mp.Lifetime)
			require.Equal(t, t0.Add(time.Hour), mp.Expires)
			require.Equal(t, EventMapped, nextEvent(t, events).Kind)
			if tc.pcp {
				g.set(func(g *fakeGW) { require.Equal(t, loopback, g.lastClient, "PCP client address field") })
			}

			// Renewal at half the lease, on the fake clock.
			clock.Advance(30 * time.Minute)
			e := nextEvent(t, events)
			require.Equal(t, EventRenewed, e.Kind, e.String())
			require.Equal(t, 1, e.Mapping.Renewals)
			require.Equal(t, t0.Add(90*time.Minute), e.Mapping.Expires)
			require.Equal(t, 2, g.count("pcp-map")+g.count("pmp-map"))

			// Mapping the same port again returns the existing mapping.
			again, err := m.Map(ctx, "udp", 5060)
			require.NoError(t, err)
			require.Equal(t, e.Mapping.External, again.External)

			require.NoError(t, m.Close())
			require.Equal(t, EventDeleted, nextEvent(t, events).Kind)
			g.set(func(g *fakeGW) {
				require.Empty(t, g.pcpMaps)
				require.Empty(t, g.pmpMaps)
			})
			_, err = m.Map(ctx, "udp", 5062)
			require.ErrorIs(t, err, ErrClosed)
			require.Zero(t, clock.Pending(), "timers left after Close")
		})
	}
}

func TestMapperEpochReset(t *testing.T) {
	t.Parallel()
	for _, proto := range []Protocol{ProtoPCP, ProtoNATPMP} {
		t.Run(proto.String(), func(t *testing.T) {
			t.Parallel()
			clock := clock.NewFake(t0)
			g := newFakeGW(t, clock, true, true)
			events := make(chan Event, 16)
			cfg := testConfig(clock, g, nil, events)
			cfg.Protocols = []Protocol{proto}
			m := NewMapper(cfg)
			t.Cleanup(func() { m.Close() })
			_, err := m.Map(context.Background(), "udp", 5060)
			require.NoError(t, err)
			_, err = m.Map(context.Background(), "udp", 5062)
			require.NoError(t, err)
			nextEvent(t, events)
			nextEvent(t, events)

			clock.Advance(10 * time.Minute)
			g.restart() // the router reboots and forgets everything
			clock.Advance(20 * time.Minute)
			// The first renewal sees the epoch go back and re-creates every mapping.
			e := nextEvent(t, events)
			require.Equal(t, EventGatewayRestarted, e.Kind, e.String())
			require.Equal(t, 1, e.Mapping.Restarts)
			clock.Advance(0) // the other mapping was scheduled for now
			e2 := nextEvent(t, events)
			require.Contains(t, []EventKind{EventRenewed, EventGatewayRestarted}, e2.Kind, e2.String())
			g.set(func(g *fakeGW) { require.Equal(t, 2, len(g.pcpMaps)+len(g.pmpMaps)) })
		})
	}
}

func TestMapperPCPNonceChecked(t *testing.T) {
	t.Parallel()
	clock := clock.NewFake(t0)
	g := newFakeGW(t, clock, false, true)
	g.set(func(g *fakeGW) { g.badNonce = 3 })
	cfg := testConfig(clock, g, nil, nil)
	cfg.Protocols = []Protocol{ProtoPCP}
	m := NewMapper(cfg)
	t.Cleanup(func() { m.Close() })
	mp, err := m.Map(context.Background(), "udp", 7000)
	require.NoError(t, err)
	require.Equal(t, uint16(7000), mp.External.Port())
	g.set(func(g *fakeGW) {
		require.Len(t, g.pcpMaps, 1)
		for n := range g.pcpMaps {
			require.Equal(t, mp.nonce, n)
		}
	})
}

func TestMapperAddressChangeAndLoss(t *testing.T) {
	t.Parallel()
	clock := clock.NewFake(t0)
	g := newFakeGW(t, clock, true, false)
	events := make(chan Event, 16)
	cfg := testConfig(clock, g, nil, events)
	cfg.Protocols = []Protocol{ProtoNATPMP}
	cfg.Lifetime = 2 * time.Minute
	cfg.PMPTimeout = 100 * time.Millisecond
	m := NewMapper(cfg)
	t.Cleanup(func() { m.Close() })
	_, err := m.Map(context.Background(), "udp", 5060)
	require.NoError(t, err)
	nextEvent(t, events)

	g.set(func(g *fakeGW) { g.external = netip.MustParseAddr("198.51.100.7") })
	clock.Advance(time.Minute)
	e := nextEvent(t, events)
	require.Equal(t, EventAddressChanged, e.Kind, e.String())
	require.Equal(t, netip.MustParseAddrPort("203.0.113.1:5060"), e.Previous)
	require.Equal(t, netip.MustParseAddrPort("198.51.100.7:5060"), e.Mapping.External)

	// The gateway stops answering: renewals fail until the lease runs out.
	g.set(func(g *fakeGW) { g.silent = true })
	for i := 0; i < 20 && len(events) == 0; i++ {
		d, ok := clock.NextIn()
		require.True(t, ok)
		clock.Advance(d)
	}
	e = nextEvent(t, events)
	require.False(t, clock.Now().Before(e.Mapping.Expires), "lost before the lease ran out")
	require.Equal(t, EventLost, e.Kind, e.String())
	require.ErrorIs(t, e.Err, ErrNoResponse)

	// It comes back: the next retry re-creates the mapping.
	g.set(func(g *fakeGW) { g.silent = false })
	d, _ := clock.NextIn()
	clock.Advance(d)
	e = nextEvent(t, events)
	require.Equal(t, EventMapped, e.Kind, e.String())
}

func TestMapperNoGatewayProtocol(t *testing.T) {
	t.Parallel()
	clock := clock.NewFake(t0)
	cfg := testConfig(clock, nil, nil, nil) // closed port, no SSDP answers
	m := NewMapper(cfg)
	t.Cleanup(func() { m.Close() })
	start := time.Now()
	_, err := m.Map(context.Background(), "udp", 5060)
	require.ErrorIs(t, err, ErrNoPortMapper)
	require.Less(t, time.Since(start), 3*time.Second)
	var re *ResultError
	require.False(t, errors.As(err, &re))
}

func TestMapperAnnounce(t *testing.T) {
	t.Parallel()
	clock := clock.NewFake(t0)
	g := newFakeGW(t, clock, false, true)
	events := make(chan Event, 16)
	cfg := testConfig(clock, g, nil, events)
	cfg.Protocols = []Protocol{ProtoPCP}
	cfg.AnnounceAddr = "127.0.0.1:0"
	annc := make(chan net.PacketConn, 1)
	cfg.ListenPacket = func(ctx context.Context, network, addr string) (net.PacketConn, error) {
		var lc net.ListenConfig
		c, err := lc.ListenPacket(ctx, network, addr)
		if err == nil && addr == cfg.AnnounceAddr {
			annc <- c
		}
		return c, err
	}
	m := NewMapper(cfg)
	t.Cleanup(func() { m.Close() })
	ac := <-annc
	_, err := m.Map(context.Background(), "udp", 5060)
	require.NoError(t, err)
	nextEvent(t, events)

	clock.Advance(5 * time.Minute)
	g.restart()
	// The rebooted gateway multicasts an unsolicited ANNOUNCE with epoch 0.
	ann := []byte{2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	ann = append(ann, make([]byte, 12)...)
	_, err = g.conn.WriteTo(ann, ac.LocalAddr())
	require.NoError(t, err)
	// The Mapper schedules a renewal for now; wait for it to be pending at 0.
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, ok := clock.NextIn()
		if ok && d == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "announcement not handled")
		time.Sleep(5 * time.Millisecond)
	}
	clock.Advance(0)
	e := nextEvent(t, events)
	require.Contains(t, []EventKind{EventRenewed, EventGatewayRestarted}, e.Kind, e.String())
	g.set(func(g *fakeGW) { require.Len(t, g.pcpMaps, 1) })
}

func TestMapperTCPAndErrors(t *testing.T) {
	t.Parallel()
	for _, p := range []Protocol{ProtoPCP, ProtoNATPMP} {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			clock := clock.NewFake(t0)
			g := newFakeGW(t, clock, true, true)
			cfg := testConfig(clock, g, nil, nil)
			cfg.Protocols = []Protocol{p}
			m := NewMapper(cfg)
			t.Cleanup(func() { m.Close() })
			udp, err := m.Map(context.Background(), "udp", 6000)
			require.NoError(t, err)
			tcp, err := m.Map(context.Background(), "tcp", 6000)
			require.NoError(t, err)
			require.Equal(t, "tcp", tcp.Network)
			require.Len(t, m.Mappings(), 2)
			require.Equal(t, []Mapping{udp, tcp}[1].Network, m.Mappings()[0].Network, "sorted by network")
			_, err = m.Map(context.Background(), "sctp", 6000)
			require.Error(t, err)
			require.NoError(t, m.Unmap(context.Background(), "tcp", 6000))
			require.Len(t, m.Mappings(), 1)
		})
	}
}

// TestMapperEventReentrancy: OnEvent runs after the Mapper's locks are
// released, so it may call the Mapper.
func TestMapperEventReentrancy(t *testing.T) {
	t.Parallel()
	clock := clock.NewFake(t0)
	g := newFakeGW(t, clock, false, true)
	cfg := testConfig(clock, g, nil, nil)
	cfg.Protocols = []Protocol{ProtoPCP}
	var m *Mapper
	rtp := make(chan Mapping, 1)
	cfg.OnEvent = func(e Event) {
		if e.Kind == EventMapped && e.Mapping.Internal.Port() == 5060 {
			mp, err := m.Map(context.Background(), "udp", 40000) // the RTP port too
			require.NoError(t, err)
			rtp <- mp
		}
	}
	m = NewMapper(cfg)
	t.Cleanup(func() { m.Close() })
	_, err := m.Map(context.Background(), "udp", 5060)
	require.NoError(t, err)
	require.Equal(t, uint16(40000), (<-rtp).External.Port())
	require.Len(t, m.Mappings(), 2)
}

// TestMapperJunkAnswers: a gateway (or a host spoofing it) that sends
// oversized, truncated and unrelated datagrams does not disturb a mapping
// over PCP or NAT-PMP, and one that sends only junk fails in the
// protocol's bounded time, not later.
func TestMapperJunkAnswers(t *testing.T) {
	t.Parallel()
	for _, p := range []Protocol{ProtoPCP, ProtoNATPMP} {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			g := newFakeGW(t, clk, true, true)
			g.set(func(g *fakeGW) { g.junk = 40 })
			cfg := testConfig(clk, g, nil, nil)
			cfg.Protocols = []Protocol{p}
			m := NewMapper(cfg)
			t.Cleanup(func() { m.Close() })
			mp, err := m.Map(context.Background(), "udp", 5060)
			require.NoError(t, err)
			require.Equal(t, p, mp.Protocol)

			g.set(func(g *fakeGW) { g.junkOnly = true })
			m2 := NewMapper(cfg)
			t.Cleanup(func() { m2.Close() })
			start := time.Now()
			mp2, err := m2.Map(context.Background(), "udp", 5062)
			require.Error(t, err, "%+v", mp2)
			require.Less(t, time.Since(start), 10*time.Second, "bounded in time")
		})
	}
}
