package turn_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/turn"
)

var labServer = netip.AddrPortFrom(netlab.Server1, netlab.TURNPort)

// labConfig is a client config for the lab's relay.
func labConfig() turn.Config {
	return turn.Config{Server: labServer, Username: netlab.TURNUser, Password: netlab.TURNPassword}
}

// labAllocate makes a client on a new LAN socket of lab, with labConfig as
// mod changes it, and allocates; the client is closed when the test ends.
func labAllocate(t *testing.T, lab *netlab.Lab, mod func(*turn.Config)) (*turn.Client, turn.Allocation) {
	t.Helper()
	conn := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(lab.Truth().Client, 0))
	cfg := labConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := turn.New(conn, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := c.Allocate(ctx)
	require.NoError(t, err)
	return c, a
}

// wanPeer is a socket on the WAN peer that counts what the relay sends it
// and answers nothing by itself.
type wanPeer struct {
	conn *net.UDPConn
	addr netip.AddrPort
	in   atomic.Int64
	from atomic.Value // netip.AddrPort of the last packet
	done chan struct{}
}

func newWANPeer(t *testing.T, lab *netlab.Lab, port uint16) *wanPeer {
	p := &wanPeer{addr: netip.AddrPortFrom(netlab.Peer, port), done: make(chan struct{})}
	p.conn = lab.ListenUDP(netlab.WAN, p.addr)
	go func() {
		defer close(p.done)
		buf := make([]byte, 2048)
		for {
			_, from, err := p.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.from.Store(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
			p.in.Add(1)
		}
	}()
	t.Cleanup(func() { p.conn.Close(); <-p.done })
	return p
}

// relayCounter counts relayed packets a client hands out.
type relayCounter struct {
	mu   sync.Mutex
	n    int64
	from netip.AddrPort
}

func (r *relayCounter) onData(b []byte, peer netip.AddrPort) {
	r.mu.Lock()
	r.n++
	r.from = peer
	r.mu.Unlock()
}

func (r *relayCounter) count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// eventually polls cond every 20 ms until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exchange sends n packets each way between the client and the peer, 10 ms
// apart, and waits until at least want arrived on each side.
func exchange(t *testing.T, c *turn.Client, rc *relayCounter, p *wanPeer, relayed netip.AddrPort, n int, want int64) {
	t.Helper()
	in0, out0 := rc.count(), p.in.Load()
	pkt := make([]byte, 172) // a 20 ms PCMU packet with its RTP header
	pkt[0] = 0x80
	for i := 0; i < n; i++ {
		require.NoError(t, c.Send(pkt, p.addr))
		_, err := p.conn.WriteToUDPAddrPort(pkt, relayed)
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, 3*time.Second, func() bool { return rc.count()-in0 >= want && p.in.Load()-out0 >= want },
		"relayed media both ways")
}

func TestLabAllocateEveryKind(t *testing.T) {
	t.Parallel()
	for _, kind := range netlab.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: kind, TURN: &netlab.TURN{}})
			peer := newWANPeer(t, lab, 7000)
			var rc relayCounter
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var c *turn.Client
			var a turn.Allocation
			if kind == netlab.Blocked {
				// UDP blocked: no answer over UDP, and the relay over TCP instead
				conn := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(lab.Truth().Client, 0))
				cfg := labConfig()
				cfg.RTO, cfg.Attempts = 50*time.Millisecond, 3
				u, err := turn.New(conn, cfg)
				require.NoError(t, err)
				_, err = u.Allocate(ctx)
				require.ErrorIs(t, err, turn.ErrUnreachable)
				require.NoError(t, u.Close())
				cfg = labConfig()
				cfg.Transport, cfg.OnData, cfg.DialContext = turn.TCP, rc.onData, lab.DialContext(netlab.LAN)
				c, err = turn.Dial(ctx, cfg)
				require.NoError(t, err)
				defer c.Close()
				a, err = c.Allocate(ctx)
				require.NoError(t, err)
			} else {
				c, a = labAllocate(t, lab, func(c *turn.Config) { c.OnData = rc.onData })
			}
			t.Logf("%s: %s", kind, a)
			require.Equal(t, netlab.Server1, a.Relayed.Addr())
			require.Equal(t, lab.Truth().Public, a.Mapped.Addr())
			require.NoError(t, c.Permit(ctx, peer.addr))
			exchange(t, c, &rc, peer, a.Relayed, 50, 45)
			require.Equal(t, a.Relayed, peer.from.Load())
		})
	}
}
