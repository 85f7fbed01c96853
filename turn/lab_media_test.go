package turn_test

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/turn"
)

// stream sends a 20 ms packet each way until stop: the client to the peer
// through the relay, the peer to the relayed address it is told.
type stream struct {
	relayed atomic.Value // netip.AddrPort the peer sends to
	sent    atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

func startStream(t *testing.T, c *turn.Client, p *wanPeer, relayed netip.AddrPort) *stream {
	s := &stream{stop: make(chan struct{}), done: make(chan struct{})}
	s.relayed.Store(relayed)
	go func() {
		defer close(s.done)
		pkt := make([]byte, 172)
		pkt[0] = 0x80
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			if c.Send(pkt, p.addr) == nil {
				s.sent.Add(1)
			}
			_, _ = p.conn.WriteToUDPAddrPort(pkt, s.relayed.Load().(netip.AddrPort))
		}
	}()
	t.Cleanup(s.end)
	return s
}

func (s *stream) end() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// flowing waits until both directions carry at least 10 new packets.
func flowing(t *testing.T, rc *relayCounter, p *wanPeer, limit time.Duration, what string) {
	t.Helper()
	in0, out0 := rc.count(), p.in.Load()
	eventually(t, limit, func() bool { return rc.count()-in0 >= 10 && p.in.Load()-out0 >= 10 }, what)
}

// A call longer than the allocation, permission and channel lifetimes (and
// than the nonce's) keeps audio both ways: the client refreshes all of them
// in time and retries the 438 Stale Nonce answers.
func TestLabOutlivesLifetimes(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.APDM, Timeout: 5 * time.Second, TURN: &netlab.TURN{
		MaxAllocateLifetime: 4 * time.Second, PermissionLifetime: 3 * time.Second,
		ChannelLifetime: 3 * time.Second, StaleNonce: 2 * time.Second}})
	peer := newWANPeer(t, lab, 7000)
	var rc relayCounter
	var events eventLog
	var logs netlab.Output
	c, a := labAllocate(t, lab, func(cfg *turn.Config) {
		cfg.OnData, cfg.OnEvent = rc.onData, events.add
		cfg.PermissionRefresh, cfg.KeepAlive = time.Second, 2*time.Second
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.Equal(t, 4*time.Second, a.Lifetime, "coturn's short maximum lifetime")
	require.NoError(t, c.Permit(ctx, peer.addr))
	startStream(t, c, peer, a.Relayed)
	// 9 s: past two allocation lifetimes, three permission and channel
	// lifetimes and four nonce lifetimes; audio checked all along (every
	// 10 packets).
	for start := time.Now(); time.Since(start) < 9*time.Second; {
		flowing(t, &rc, peer, 2*time.Second, "audio both ways past the lifetimes")
	}
	now, ok := c.Allocation()
	require.True(t, ok)
	require.Equal(t, a.Relayed, now.Relayed, "the same allocation all along")
	require.Empty(t, events.kinds(turn.EventLost), "no allocation lost: %v", events.all())
	require.Contains(t, logs.String(), "438 stale nonce", "coturn's nonces expired during the call")
}

type eventLog struct {
	mu     sync.Mutex
	events []turn.Event
}

func (l *eventLog) add(e turn.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) all() []turn.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]turn.Event(nil), l.events...)
}

func (l *eventLog) kinds(k turn.EventKind) []turn.Event {
	var out []turn.Event
	for _, e := range l.all() {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// A router reboot (conntrack flush) during a relayed call: where the NAT
// keeps the flow's public port the allocation goes on; where it gives a new
// one (apdm) the keep-alive sees it and the client either moves the
// allocation to the new flow with its mobility ticket (RFC 8016: same
// relayed address, the peer notices nothing) or allocates again, and the
// peer, told the new relayed address (as a re-INVITE would), gets audio
// again. The log says within how long.
func TestLabRouterReboot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind     netlab.Kind
		mobility bool
	}{{netlab.EIMAPDF, false}, {netlab.APDM, false}, {netlab.APDM, true}} {
		kind := tc.kind
		name := string(kind) + map[bool]string{true: "/mobility", false: ""}[tc.mobility]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: kind, TURN: &netlab.TURN{Mobility: tc.mobility}})
			conn := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(lab.Truth().Client, 0))
			peer := newWANPeer(t, lab, 7000)
			var rc relayCounter
			recovered := make(chan turn.Event, 4)
			var events eventLog
			cfg := labConfig()
			cfg.OnData, cfg.Mobility = rc.onData, tc.mobility
			var logs netlab.Output
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			defer func() {
				if t.Failed() {
					t.Log(logs.String())
				}
			}()
			cfg.OnEvent = func(e turn.Event) {
				events.add(e)
				if e.Kind == turn.EventRecovered {
					recovered <- e
				}
			}
			cfg.KeepAlive = time.Second
			c, err := turn.New(conn, cfg)
			require.NoError(t, err)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a, err := c.Allocate(ctx)
			require.NoError(t, err)
			require.Equal(t, tc.mobility, a.Mobile, "a mobility ticket when asked for")
			require.NoError(t, c.Permit(ctx, peer.addr))
			s := startStream(t, c, peer, a.Relayed)
			flowing(t, &rc, peer, 3*time.Second, "audio before the reboot")

			// the router forgets its bindings; move the flow to a new port where the NAT picks ports
			if kind == netlab.APDM {
				lab.SetNATPortRange(20000, 20999)
			}
			flushed := time.Now()
			lab.FlushConntrack()
			go func() {
				select {
				case e := <-recovered:
					s.relayed.Store(e.Relayed) // the re-INVITE
				case <-s.stop:
				}
			}()
			flowing(t, &rc, peer, 10*time.Second, "audio after the reboot")
			t.Logf("%s: audio both ways again %v after the conntrack flush; events %v", name, time.Since(flushed).Round(10*time.Millisecond), events.all())
			now, ok := c.Allocation()
			require.True(t, ok)
			switch {
			case kind == netlab.APDM && tc.mobility:
				eventually(t, 5*time.Second, func() bool { return len(events.all()) > 0 }, "an event")
				now, _ = c.Allocation()
				require.NotEqual(t, a.Mapped, now.Mapped, "the NAT moved the flow")
				require.Equal(t, a.Relayed, now.Relayed, "the allocation moved with it")
				require.Len(t, events.kinds(turn.EventMoved), 1)
				require.Empty(t, events.kinds(turn.EventLost))
			case kind == netlab.APDM:
				require.NotEqual(t, a.Mapped, now.Mapped, "the NAT moved the flow")
				require.Len(t, events.kinds(turn.EventRecovered), 1)
			default:
				require.Equal(t, a.Relayed, now.Relayed, "the same allocation")
				require.Empty(t, events.all())
			}
		})
	}
}

// TURN over TCP and TLS to the server, from behind a symmetric NAT.
func TestLabStreams(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.APDM, TURN: &netlab.TURN{TLS: true}})
	for _, tr := range []turn.Transport{turn.TCP, turn.TLS} {
		t.Run(tr.String(), func(t *testing.T) {
			peer := newWANPeer(t, lab, map[turn.Transport]uint16{turn.TCP: 7001, turn.TLS: 7002}[tr])
			var rc relayCounter
			cfg := labConfig()
			cfg.Transport, cfg.OnData, cfg.DialContext = tr, rc.onData, lab.DialContext(netlab.LAN)
			if tr == turn.TLS {
				cfg.Server = netip.AddrPortFrom(netlab.Server1, netlab.TURNTLSPort)
				cfg.DialContext = lab.DialTLS(netlab.LAN, netlab.Server1.String())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := turn.Dial(ctx, cfg)
			require.NoError(t, err)
			defer c.Close()
			a, err := c.Allocate(ctx)
			require.NoError(t, err)
			require.Equal(t, tr, a.Transport)
			require.NoError(t, c.Permit(ctx, peer.addr))
			exchange(t, c, &rc, peer, a.Relayed, 50, 45)
		})
	}
}

// EVEN-PORT with a reservation: RTP on an even relayed port, RTCP from a
// second socket on the next one.
func TestLabEvenPort(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.ADMAPDF, TURN: &netlab.TURN{}})
	rtp := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(lab.Truth().Client, 0))
	rtcp := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(lab.Truth().Client, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := labConfig()
	cfg.EvenPort = true
	c1, err := turn.New(rtp, cfg)
	require.NoError(t, err)
	defer c1.Close()
	a1, err := c1.Allocate(ctx)
	require.NoError(t, err)
	require.Zero(t, a1.Relayed.Port()%2, "even RTP port")
	require.NotZero(t, a1.Reservation)
	cfg = labConfig()
	cfg.Reservation = a1.Reservation
	c2, err := turn.New(rtcp, cfg)
	require.NoError(t, err)
	defer c2.Close()
	a2, err := c2.Allocate(ctx)
	require.NoError(t, err)
	require.Equal(t, a1.Relayed.Port()+1, a2.Relayed.Port(), "RTCP on the next port")
}

// The keep-alive holds the NAT binding towards the server open through
// silence (a call on hold) at the interval the binding lifetime implies,
// not only at the refreshes minutes apart: after an idle time past the
// router's 3 s binding timeout, the peer's packets still reach the client.
// Without the keep-alive they do not (the control row).
func TestLabKeepAliveThroughSilence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		keepAlive time.Duration
		reach     bool
	}{{"keep-alive 1s", time.Second, true}, {"no keep-alive", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: netlab.APDM, Timeout: 3 * time.Second, TURN: &netlab.TURN{}})
			peer := newWANPeer(t, lab, 7000)
			var rc relayCounter
			c, a := labAllocate(t, lab, func(c *turn.Config) { c.OnData, c.KeepAlive = rc.onData, tc.keepAlive })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, c.Permit(ctx, peer.addr))
			exchange(t, c, &rc, peer, a.Relayed, 20, 15)

			// silence on both sides for 5 s: past the binding timeout
			idle := time.NewTimer(5 * time.Second)
			<-idle.C
			in0 := rc.count()
			pkt := []byte{0x80, 0, 0, 1}
			for i := 0; i < 20; i++ {
				_, err := peer.conn.WriteToUDPAddrPort(pkt, a.Relayed)
				require.NoError(t, err)
			}
			if tc.reach {
				eventually(t, 3*time.Second, func() bool { return rc.count()-in0 >= 15 }, "the peer's packets reach the client after the silence")
				return
			}
			// control: give the packets the same 3 s, then none may have come
			end := time.NewTimer(3 * time.Second)
			<-end.C
			require.Zero(t, rc.count()-in0, "without keep-alives the NAT forgot the flow")
		})
	}
}

// TURN over TCP: the allocation lives on the stream, so a stream the
// network breaks (a TCP reset from the router) loses it; the client dials
// again (backing off while the server cannot be reached), allocates, and
// restores the peer's permission and channel.
func TestLabStreamRecovery(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, TURN: &netlab.TURN{}})
	nft := func(args ...string) {
		out, err := lab.Command(netlab.RTR, "nft", args...).CombinedOutput()
		require.NoError(t, err, "nft %v: %s", args, out)
	}
	peer := newWANPeer(t, lab, 7000)
	var rc relayCounter
	var events eventLog
	cfg := labConfig()
	cfg.Transport, cfg.OnData, cfg.OnEvent, cfg.DialContext = turn.TCP, rc.onData, events.add, lab.DialContext(netlab.LAN)
	cfg.KeepAlive = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := turn.Dial(ctx, cfg)
	require.NoError(t, err)
	defer c.Close()
	a, err := c.Allocate(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Permit(ctx, peer.addr))
	exchange(t, c, &rc, peer, a.Relayed, 20, 15)

	// the router resets every TCP segment to the relay until the rule goes
	nft("add table inet turnbreak")
	nft("add chain inet turnbreak breaker { type filter hook forward priority -10; policy accept; }")
	nft("add rule inet turnbreak breaker tcp dport " + strconv.Itoa(netlab.TURNPort) + " reject with tcp reset")
	eventually(t, 5*time.Second, func() bool { return len(events.kinds(turn.EventLost)) > 0 }, "the stream breaks")
	eventually(t, 5*time.Second, func() bool { return len(events.kinds(turn.EventRefreshFailed)) > 0 }, "a redial fails")
	nft("delete table inet turnbreak")
	eventually(t, 10*time.Second, func() bool { return len(events.kinds(turn.EventRecovered)) > 0 }, "recovered")
	now, ok := c.Allocation()
	require.True(t, ok)
	exchange(t, c, &rc, peer, now.Relayed, 20, 15)
	t.Logf("events: %v", events.all())
}

// TURN over TCP through a router that reboots (conntrack flushed; it
// adopts no connection it forgot, so the stream's segments are dropped
// without a reset): the first keep-alive that goes unanswered gives the
// stream up or, with keep-alives off, the first write the full stream does
// not take within StreamWriteTimeout (Send never blocks longer); the
// client dials again and allocates, and audio flows both ways again at the
// new relayed address (the peer told, as by a re-INVITE).
func TestLabStreamRouterReboot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		keepAlive time.Duration
		why       string
		limit     time.Duration
	}{{"keepalive", time.Second, "keep-alive unanswered", 15 * time.Second}, {"write", -1, "write: ", 30 * time.Second}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, TCPTimeout: 5 * time.Second, TURN: &netlab.TURN{}})
			peer := newWANPeer(t, lab, 7000)
			var rc relayCounter
			var events eventLog
			recovered := make(chan turn.Event, 4)
			cfg := labConfig()
			cfg.Transport, cfg.OnData, cfg.DialContext, cfg.KeepAlive = turn.TCP, rc.onData, lab.DialContext(netlab.LAN), tc.keepAlive
			cfg.OnEvent = func(e turn.Event) {
				events.add(e)
				if e.Kind == turn.EventRecovered {
					recovered <- e
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := turn.Dial(ctx, cfg)
			require.NoError(t, err)
			defer c.Close()
			a, err := c.Allocate(ctx)
			require.NoError(t, err)
			require.NoError(t, c.Permit(ctx, peer.addr))
			s := startStream(t, c, peer, a.Relayed)
			flowing(t, &rc, peer, 3*time.Second, "audio before the reboot")

			flushed := time.Now()
			lab.FlushConntrack()
			go func() {
				select {
				case e := <-recovered:
					s.relayed.Store(e.Relayed) // the re-INVITE
				case <-s.stop:
				}
			}()
			flowing(t, &rc, peer, tc.limit, "audio after the reboot")
			t.Logf("TCP, %s: audio both ways again %v after the conntrack flush; events %v",
				tc.name, time.Since(flushed).Round(10*time.Millisecond), events.all())
			lost := events.kinds(turn.EventLost)
			require.NotEmpty(t, lost, "the stream was given up")
			require.ErrorContains(t, lost[0].Err, tc.why)
			require.Len(t, events.kinds(turn.EventRecovered), 1)
		})
	}
}

// Mobility asked of a server that refuses it (coturn without --mobility
// answers 405): the client allocates without.
func TestLabMobilityRefused(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, TURN: &netlab.TURN{}})
	_, a := labAllocate(t, lab, func(c *turn.Config) { c.Mobility = true })
	require.False(t, a.Mobile)
}
