package outbound

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/sipmsg"
)

// blackhole relays TCP connections to an edge until cut, like a NAT: after
// cut the connections open then stay open and silently drop every byte both
// ways, as a rebooted router does with the flows it forgot; new
// connections are relayed again.
type blackhole struct {
	ln    net.Listener
	to    netip.AddrPort
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	gen   atomic.Int64 // connections of an older generation are dropped
}

func newBlackhole(t *testing.T, to netip.AddrPort) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &blackhole{ln: ln, to: to}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *blackhole) addr() netip.AddrPort { return callerconn.AddrPortOf(b.ln.Addr()) }

// cut makes the open connections drop everything from now on.
func (b *blackhole) cut() { b.gen.Add(1) }

func (b *blackhole) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", b.to.String())
		if err != nil {
			c.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, c, s)
		b.mu.Unlock()
		g := b.gen.Load()
		b.wg.Add(2)
		go b.pipe(c, s, g)
		go b.pipe(s, c, g)
	}
}

// pipe copies from src to dst while the connection's generation is current.
func (b *blackhole) pipe(dst, src net.Conn, g int64) {
	defer b.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 && b.gen.Load() == g {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// The same bound for a UDP flow, whose keep-alives are STUN Binding
// requests to the edge's SIP port: the path goes silent right after an
// answer, and the next Binding's wait (on the fake clock) ends within one
// keep-alive interval of it.
func TestFlowDetectsWithinIntervalUDP(t *testing.T) {
	t.Parallel()
	const flowTimer = 30 * time.Second
	te := newTestEdge(t, EdgeConfig{FlowTimer: flowTimer})
	bh := newUDPBlackhole(t, te.servePacket(t))
	clk := clock.NewFake(time.Unix(1000, 0))
	ev := newEvents()
	f := runFlow(t, FlowConfig{Transport: sipmsg.UDP, Server: bh.addr(), Register: registerFunc(1), OnEvent: ev.on, Clock: clk})
	reg := ev.wait(t, Registered)
	require.Equal(t, flowTimer, reg.Interval)
	last := reg.At
	for i := 0; i < 3; i++ {
		d := pingDue(t, clk)
		require.LessOrEqual(t, clk.Now().Add(d).Sub(last), flowTimer, "the edge hears from the UA within its Flow-Timer")
		clk.Advance(d) // the Binding runs inside: answered over loopback
		last = clk.Now()
		answered(t, clk)
	}
	wait := f.PongTimeout()
	require.Equal(t, time.Second, wait, "loopback: RFC 6298's 1 s floor")
	bh.cut() // right after an answer
	cutAt := clk.Now()
	d := pingDue(t, clk)
	fired := make(chan struct{})
	go func() { // the Binding blocks inside this Advance until its wait ends
		defer close(fired)
		clk.Advance(d)
	}()
	var failed Event
	for failed.Kind == 0 {
		select {
		case e := <-ev.ch:
			if e.Kind == FlowFailed {
				failed = e
			}
		case <-time.After(5 * time.Millisecond):
			if clk.Now().Sub(cutAt) < d+wait { // step to the Binding's deadline, no further
				clk.Advance(min(100*time.Millisecond, d+wait-clk.Now().Sub(cutAt)))
			}
		}
	}
	<-fired
	require.ErrorIs(t, failed.Err, ErrFlowFailed)
	lat := failed.At.Sub(cutAt)
	require.LessOrEqual(t, lat, flowTimer, "found within one keep-alive interval")
	require.Equal(t, d+wait, lat, "by the Binding's silence: sent a jittered interval less its wait after the answer")
	ev.wait(t, Registered)
	t.Logf("UDP: the path went silent right after a STUN answer; found %v later (Flow-Timer %v, wait %v)", lat, flowTimer, wait)
}

// The bound of "a dead flow is found within one keep-alive interval",
// exactly on the fake clock, over real TCP and TLS connections: the edge
// asks for keep-alives every 30 s (Flow-Timer), the path between UA and
// edge goes silent right after a pong (the worst moment: the flow was just
// proven alive), and the flow reports FlowFailed at most 30 s of clock time
// later; the next flow registers at once.
func TestFlowDetectsWithinInterval(t *testing.T) {
	t.Parallel()
	certs, err := netlab.MakeCerts(t.TempDir(), "", "edge.example", netip.MustParseAddr("127.0.0.1"))
	require.NoError(t, err)
	const flowTimer = 30 * time.Second
	for _, tr := range []sipmsg.Transport{sipmsg.TCP, sipmsg.TLS} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			te := newTestEdge(t, EdgeConfig{FlowTimer: flowTimer, TLS: &tls.Config{Certificates: []tls.Certificate{certs.Server}}})
			bh := newBlackhole(t, te.serve(t, tr))
			clk := clock.NewFake(time.Unix(1000, 0))
			ev := newEvents()
			f := runFlow(t, FlowConfig{
				Transport: tr, Server: bh.addr(), ServerName: "edge.example", RootCAs: certs.Roots,
				Register: registerFunc(1), OnEvent: ev.on, Clock: clk,
			})
			reg := ev.wait(t, Registered)
			require.Equal(t, flowTimer, reg.Interval)
			// answered pings: after each pong the next ping is scheduled, the
			// only timer of the flow, further off than any wait for a pong
			last := reg.At // the REGISTER was the last the edge heard
			for i := 0; i < 3; i++ {
				d := pingDue(t, clk)
				require.LessOrEqual(t, clk.Now().Add(d).Sub(last), flowTimer, "the edge hears from the UA within its Flow-Timer")
				clk.Advance(d)
				last = clk.Now()
				answered(t, clk)
			}
			wait := f.PongTimeout()
			require.Equal(t, time.Second, wait, "loopback: RFC 6298's 1 s floor")
			bh.cut() // the worst moment: right after a pong
			cutAt := clk.Now()
			var failed Event
			for failed.Kind == 0 {
				d := pingDue(t, clk)
				clk.Advance(d)
				select {
				case e := <-ev.ch:
					if e.Kind == FlowFailed {
						failed = e
					}
				case <-time.After(20 * time.Millisecond):
				}
			}
			require.ErrorIs(t, failed.Err, ErrFlowFailed)
			lat := failed.At.Sub(cutAt)
			require.LessOrEqual(t, lat, flowTimer, "found within one keep-alive interval")
			require.GreaterOrEqual(t, lat, flowTimer*4/5-time.Second, "by the ping's silence, not earlier")
			re := ev.wait(t, Registered)
			require.Equal(t, failed.At, re.At, "a flow that worked is formed again at once")
			t.Logf("%s: the path went silent right after a pong; found %v later (Flow-Timer %v, pong wait %v)", tr, lat, flowTimer, wait)
		})
	}
}

// pingDue waits until the flow's one timer is armed and returns when it
// fires.
func pingDue(t *testing.T, clk *clock.Fake) time.Duration {
	t.Helper()
	var d time.Duration
	require.Eventually(t, func() bool {
		var ok bool
		d, ok = clk.NextIn()
		return ok && clk.Pending() == 1
	}, 5*time.Second, time.Millisecond)
	return d
}

// answered waits until the pong of the ping just sent was read: the flow's
// timer is then the next ping (at least 80 % of 30 s less the 10 s bound),
// no longer the pong's wait (at most 10 s).
func answered(t *testing.T, clk *clock.Fake) {
	t.Helper()
	require.Eventually(t, func() bool {
		d, ok := clk.NextIn()
		return ok && d > 10*time.Second
	}, 5*time.Second, time.Millisecond, "no pong")
}

// servePacket runs the edge on a new loopback UDP socket.
func (te *testEdge) servePacket(t *testing.T) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- te.ServePacket(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		pc.Close()
	})
	return callerconn.AddrPortOf(pc.LocalAddr())
}

// udpBlackhole is blackhole for UDP: a NAT that gives each client address
// its own socket towards the edge; after cut the mappings made before drop
// everything both ways (the router rebooted), and a new client address
// gets a new mapping.
type udpBlackhole struct {
	pc  *net.UDPConn
	to  netip.AddrPort
	gen atomic.Int64
	wg  sync.WaitGroup
	mu  sync.Mutex
	up  map[netip.AddrPort]*udpMapping
}

type udpMapping struct {
	c   *net.UDPConn
	gen int64
}

func newUDPBlackhole(t *testing.T, to netip.AddrPort) *udpBlackhole {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	require.NoError(t, err)
	b := &udpBlackhole{pc: pc, to: to, up: map[netip.AddrPort]*udpMapping{}}
	b.wg.Add(1)
	go b.run()
	t.Cleanup(func() {
		pc.Close()
		b.mu.Lock()
		for _, m := range b.up {
			m.c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *udpBlackhole) addr() netip.AddrPort { return callerconn.AddrPortOf(b.pc.LocalAddr()) }

func (b *udpBlackhole) cut() { b.gen.Add(1) }

// run relays the clients' datagrams out through their mappings.
func (b *udpBlackhole) run() {
	defer b.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := b.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b.mu.Lock()
		m, ok := b.up[from]
		if !ok {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b.to))
			if err != nil {
				b.mu.Unlock()
				continue
			}
			m = &udpMapping{c: c, gen: b.gen.Load()}
			b.up[from] = m
			b.wg.Add(1)
			go b.back(m, from)
		}
		b.mu.Unlock()
		if m.gen == b.gen.Load() {
			_, _ = m.c.Write(buf[:n])
		}
	}
}

// back relays the edge's datagrams on mapping m to client to.
func (b *udpBlackhole) back(m *udpMapping, to netip.AddrPort) {
	defer b.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, err := m.c.Read(buf)
		if err != nil {
			return
		}
		if m.gen == b.gen.Load() {
			_, _ = b.pc.WriteToUDPAddrPort(buf[:n], to)
		}
	}
}
