package turn_test

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/turn"
)

var fakePeer = netip.MustParseAddrPort("127.0.0.1:7000")

// newFakeClient allocates on a fake server through a loopback socket that
// the test reads (CallerReads) in a goroutine, handing packets in.
func newFakeClient(t testing.TB, s *fakeServer, mod func(*turn.Config)) (*turn.Client, *net.UDPConn) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	cfg := turn.Config{Server: s.addr, Username: fakeUser, Password: fakePass, RTO: 20 * time.Millisecond, Attempts: 3}
	if mod != nil {
		mod(&cfg)
	}
	c, err := turn.New(conn, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c, conn
}

func allocate(t testing.TB, c *turn.Client) turn.Allocation {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := c.Allocate(ctx)
	require.NoError(t, err)
	return a
}

func TestAllocatePermitAndFrames(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	c, _ := newFakeClient(t, s, nil)
	a := allocate(t, c)
	require.Equal(t, s.relay, a.Relayed)
	require.Equal(t, time.Duration(600)*time.Second, a.Lifetime)

	// before a channel: a Send indication (and a bind starts)
	f, err := c.AppendFrame(nil, []byte("rtp"), netip.MustParseAddrPort("127.0.0.1:7001"))
	require.NoError(t, err)
	require.False(t, turn.IsChannelData(f))
	require.Equal(t, []byte{0x00, 0x16}, f[:2], "Send indication")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Permit(ctx, fakePeer))
	require.Equal(t, 1, s.count(stun.MethodCreatePermission))
	ch := s.channelOf(fakePeer)
	require.NotZero(t, ch)

	f, err = c.AppendFrame(f[:0], []byte("rtp"), fakePeer)
	require.NoError(t, err)
	require.Equal(t, []byte{byte(ch >> 8), byte(ch), 0, 3, 'r', 't', 'p'}, f, "ChannelData, no padding over UDP")

	// ChannelData from the server on the channel is media from the peer
	p, peer, ok := c.HandlePacket(f, s.addr)
	require.True(t, ok)
	require.Equal(t, fakePeer, peer)
	require.Equal(t, "rtp", string(p))
	// the same bytes from elsewhere are the caller's
	_, _, ok = c.HandlePacket(f, fakePeer)
	require.False(t, ok)
	// a STUN answer to someone else's transaction is the caller's too
	other := stun.MustBuild(stun.TransactionID, stun.BindingSuccess)
	_, _, ok = c.HandlePacket(other.Raw, s.addr)
	require.False(t, ok)
}

func TestDataIndication(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	c, _ := newFakeClient(t, s, nil)
	allocate(t, c)
	peer := netip.MustParseAddrPort("127.0.0.9:7100")
	xor := stun.XORMappedAddress{IP: peer.Addr().AsSlice(), Port: int(peer.Port())}
	ind := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodData, stun.ClassIndication),
		setterFunc(func(m *stun.Message) error { return xor.AddToAs(m, stun.AttrXORPeerAddress) }),
		setterFunc(func(m *stun.Message) error { m.Add(stun.AttrData, []byte("hello")); return nil }))
	p, from, ok := c.HandlePacket(ind.Raw, s.addr)
	require.True(t, ok)
	require.Equal(t, peer, from)
	require.Equal(t, "hello", string(p))
	// a new port of a permitted address gets its channel
	require.Eventually(t, func() bool { return s.channelOf(peer) != 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestAuthAnswers(t *testing.T) {
	t.Parallel()
	t.Run("stale nonce retried", func(t *testing.T) {
		t.Parallel()
		s := newFakeServer(t)
		s.mu.Lock()
		s.staleOnce[stun.MethodAllocate] = true
		s.staleOnce[stun.MethodChannelBind] = true
		s.mu.Unlock()
		c, _ := newFakeClient(t, s, nil)
		allocate(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, c.Permit(ctx, fakePeer))
		require.Equal(t, 3, s.count(stun.MethodAllocate), "unauthenticated, 438, success")
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		s := newFakeServer(t)
		c, _ := newFakeClient(t, s, func(c *turn.Config) { c.Password = "nope" })
		_, err := c.Allocate(context.Background())
		require.ErrorIs(t, err, turn.ErrUnauthorized)
		require.ErrorContains(t, err, "wrong username or password")
		require.Equal(t, 2, s.count(stun.MethodAllocate), "no retry loop")
	})
	t.Run("no answer", func(t *testing.T) {
		t.Parallel()
		s := newFakeServer(t)
		s.silent.Store(true)
		c, _ := newFakeClient(t, s, nil)
		_, err := c.Allocate(context.Background())
		require.ErrorIs(t, err, turn.ErrUnreachable)
	})
	t.Run("context", func(t *testing.T) {
		t.Parallel()
		s := newFakeServer(t)
		s.silent.Store(true)
		c, _ := newFakeClient(t, s, func(c *turn.Config) { c.RTO, c.Attempts = time.Second, 7 })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Allocate(ctx)
		require.ErrorIs(t, err, turn.ErrUnreachable)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// A 437 on Refresh loses the allocation; the client allocates again and
// says so.
func TestMismatchOnRefresh(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	var events eventLog
	c, _ := newFakeClient(t, s, func(c *turn.Config) { c.Clock, c.OnEvent, c.KeepAlive = clk, events.add, -1 })
	a := allocate(t, c)
	s.mu.Lock()
	s.mismatch[stun.MethodRefresh] = true
	s.mu.Unlock()
	clk.Advance(a.Lifetime / 2)
	require.Eventually(t, func() bool { return len(events.kinds(turn.EventRecovered)) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Len(t, events.kinds(turn.EventLost), 1)
	require.Equal(t, 2, s.count(stun.MethodAllocate)-1, "allocated again (one unauthenticated try first)")
}

// The keep-alive sees the NAT move the flow (the server reports another
// mapped address): the allocation is lost and made again.
func TestKeepAliveSeesMovedFlow(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	var events eventLog
	c, _ := newFakeClient(t, s, func(c *turn.Config) { c.Clock, c.OnEvent, c.KeepAlive = clk, events.add, time.Second })
	allocate(t, c)
	clk.Advance(time.Second)
	require.Eventually(t, func() bool { return s.count(stun.MethodBinding) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Empty(t, events.all(), "same mapping: nothing happens")

	s.mu.Lock()
	s.mapped = netip.MustParseAddrPort("127.0.0.1:9")
	s.mu.Unlock()
	require.Eventually(t, func() bool {
		clk.Advance(time.Second)
		return len(events.kinds(turn.EventRecovered)) == 1
	}, 5*time.Second, 10*time.Millisecond)
	lost := events.kinds(turn.EventLost)
	require.Len(t, lost, 1)
	require.ErrorContains(t, lost[0].Err, "the NAT moved the flow")
}

func TestCloseLeavesConnAndNoGoroutines(t *testing.T) {
	s := newFakeServer(t)
	before := runtime.NumGoroutine()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer conn.Close()
	c, err := turn.New(conn, turn.Config{Server: s.addr, Username: fakeUser, Password: fakePass})
	require.NoError(t, err)
	allocate(t, c)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "twice is fine")
	require.Eventually(t, func() bool { return s.count(stun.MethodRefresh) == 1 }, 5*time.Second, 10*time.Millisecond,
		"Close deletes the allocation")
	_, err = conn.WriteToUDPAddrPort([]byte("still mine"), s.addr)
	require.NoError(t, err, "the conn stays open")
	// (testify's Eventually polls in a goroutine of its own, so not with it)
	eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= before }, "goroutines back to the start")
	_, err = c.AppendFrame(nil, []byte("x"), fakePeer)
	require.ErrorIs(t, err, turn.ErrNoAllocation)
}

// The hot path allocates nothing: framing and sending on a bound channel,
// and taking ChannelData in.
func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	s := newFakeServer(t)
	c, _ := newFakeClient(t, s, nil)
	allocate(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Permit(ctx, fakePeer))
	pkt := make([]byte, 172)
	frame, err := c.AppendFrame(make([]byte, 0, 256), pkt, fakePeer)
	require.NoError(t, err)
	require.True(t, turn.IsChannelData(frame))
	buf := make([]byte, 0, 256)
	require.Zero(t, testing.AllocsPerRun(200, func() { buf, _ = c.AppendFrame(buf[:0], pkt, fakePeer) }), "AppendFrame")
	require.Zero(t, testing.AllocsPerRun(200, func() { _ = c.Send(pkt, fakePeer) }), "Send")
	require.Zero(t, testing.AllocsPerRun(200, func() { c.HandlePacket(frame, s.addr) }), "HandlePacket")
}

// Peers are bounded: one channel each, MaxPeers at most.
func TestTooManyPeers(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	c, _ := newFakeClient(t, s, func(c *turn.Config) { c.MaxPeers = 1 })
	allocate(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Permit(ctx, fakePeer))
	require.ErrorIs(t, c.Permit(ctx, netip.MustParseAddrPort("127.0.0.1:7002")), turn.ErrTooManyPeers)
	// a Send to another peer still goes out as a Send indication, without a channel
	f, err := c.AppendFrame(nil, []byte("x"), netip.MustParseAddrPort("127.0.0.1:7003"))
	require.NoError(t, err)
	require.False(t, turn.IsChannelData(f))
}
