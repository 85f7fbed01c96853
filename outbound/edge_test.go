package outbound

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sipmsg"
	"github.com/stretchr/testify/require"
)

// Bad input on a stream closes that connection only: a well-behaved UA on
// another connection keeps its flow and its pongs.
func TestEdgeBadStreams(t *testing.T) {
	t.Parallel()
	te := newTestEdge(t, EdgeConfig{FrameTimeout: 200 * time.Millisecond, MaxMessage: 4096, MaxKeepalives: 50})
	addr := te.serve(t, sipmsg.TCP)
	good := dialEdge(t, addr)
	ping(t, good)
	tests := []struct {
		name  string
		send  func(c net.Conn) error
		large bool // the peer sends more than it may: expect a reset or EOF
	}{
		{"huge Content-Length", func(c net.Conn) error {
			_, err := c.Write([]byte("REGISTER sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n"))
			return err
		}, false},
		{"endless headers", func(c net.Conn) error {
			_, err := c.Write([]byte("REGISTER sip:x SIP/2.0\r\n" + strings.Repeat("X-Junk: aaaaaaaaaaaaaaaa\r\n", 300)))
			return err
		}, true},
		{"slow sender", func(c net.Conn) error {
			_, err := c.Write([]byte("REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1"))
			return err // and nothing more
		}, false},
		{"partial frame then close", func(c net.Conn) error {
			_, err := c.Write([]byte("REGISTER sip:x SIP/2.0\r\nContent-Length: 10\r\n\r\nabc"))
			if err == nil {
				err = c.(*net.TCPConn).CloseWrite()
			}
			return err
		}, false},
		{"CRLF flood", func(c net.Conn) error {
			_, err := c.Write(bytes.Repeat([]byte("\r\n\r\n"), 1000))
			return err
		}, true},
		{"not SIP", func(c net.Conn) error {
			_, err := c.Write([]byte{0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5})
			return err
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialEdge(t, addr)
			err := tt.send(c)
			if !tt.large {
				require.NoError(t, err)
			}
			// the edge closes the connection (pongs to a flood may come first)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "closed by the edge, not left open")
			ping(t, good) // the other flow is unaffected
		})
	}
	require.Equal(t, 1, te.Flows())
}

func dialEdge(t *testing.T, addr netip.AddrPort) net.Conn {
	c, err := net.Dial("tcp", addr.String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func ping(t *testing.T, c net.Conn) {
	t.Helper()
	_, err := c.Write([]byte("\r\n\r\n"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	b := make([]byte, 2)
	_, err = io.ReadFull(c, b)
	require.NoError(t, err)
	require.Equal(t, "\r\n", string(b))
}

// The edge's UDP socket answers STUN (RFC 5626 §4.4.2), drops keep-alives
// and hands SIP to Handle; Send reaches a UDP flow from that socket.
func TestEdgePacket(t *testing.T) {
	t.Parallel()
	te := newTestEdge(t, EdgeConfig{})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- te.ServePacket(ctx, pc) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	ua, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ua.Close()
	stunc := nat.NewClient(ua, nat.ClientConfig{})
	defer stunc.Close()
	mapped, err := stunc.Binding(context.Background(), callerconn.AddrPortOf(pc.LocalAddr()))
	require.NoError(t, err)
	require.Equal(t, callerconn.AddrPortOf(ua.LocalAddr()), mapped)

	_, err = pc.WriteTo([]byte("x"), ua.LocalAddr()) // unrelated
	require.NoError(t, err)
	_, err = ua.WriteTo([]byte("OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKo\r\nContent-Length: 0\r\n\r\n"), pc.LocalAddr())
	require.NoError(t, err)
	got := <-te.other
	require.True(t, bytes.HasPrefix(got, []byte("OPTIONS")))
}

// A dual-stack edge sends UDP from its socket of the remote's family;
// with none of that family it falls back to the other, and when a
// family's socket stops, another of that family takes over.
func TestEdgeFlowForFamily(t *testing.T) {
	t.Parallel()
	te := newTestEdge(t, EdgeConfig{})
	serve := func(addr string) (local netip.AddrPort, stop func()) {
		pc, err := net.ListenPacket("udp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { pc.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- te.ServePacket(ctx, pc) }()
		local = callerconn.AddrPortOf(pc.LocalAddr())
		require.Eventually(t, func() bool { return te.Has(sipmsg.Flow{Local: local, Transport: sipmsg.UDP}) },
			5*time.Second, time.Millisecond, "ServePacket(%s) never took the socket", local)
		stop = func() {
			cancel()
			require.NoError(t, <-done)
		}
		t.Cleanup(func() { cancel() })
		return local, stop
	}
	ua4, ua6 := netip.MustParseAddrPort("127.0.0.1:5062"), netip.MustParseAddrPort("[::1]:5062")
	v4, _ := serve("127.0.0.1:0")
	require.Equal(t, v4, te.FlowFor(ua6).Local, "no IPv6 socket yet: the IPv4 one, as a single-stack edge does")
	v6, stop6 := serve("[::1]:0")
	v6b, _ := serve("[::1]:0")
	for _, c := range []struct {
		remote netip.AddrPort
		local  netip.AddrPort
	}{
		{ua4, v4},
		{netip.MustParseAddrPort("[::ffff:127.0.0.1]:5062"), v4},
		{ua6, v6},
	} {
		f := te.FlowFor(c.remote)
		require.Equal(t, sipmsg.Flow{Remote: c.remote, Local: c.local, Transport: sipmsg.UDP}, f, "%s", c.remote)
		require.True(t, te.Has(f))
	}

	// Send goes out of the IPv6 socket to an IPv6 UA
	ua, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[::1]:0")))
	require.NoError(t, err)
	defer ua.Close()
	at := callerconn.AddrPortOf(ua.LocalAddr())
	require.NoError(t, te.SendTo(at, []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")))
	require.NoError(t, ua.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 100)
	_, from, err := ua.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	require.Equal(t, v6, from, "sent from the edge's IPv6 socket")

	stop6()
	require.Equal(t, v6b, te.FlowFor(ua6).Local, "the family's other socket takes over")
}

// RouteFlow reads the flow back from the Path the edge wrote, as the
// registrar returns it in Route; a forged token is an error.
func TestEdgeRouteFlow(t *testing.T) {
	t.Parallel()
	self := netip.MustParseAddrPort("203.0.113.2:5060")
	e, err := NewEdge(EdgeConfig{Self: self, Key: []byte("k"), Handle: func(context.Context, sipmsg.Flow, []byte) {}})
	require.NoError(t, err)
	f := sipmsg.Flow{Remote: netip.MustParseAddrPort("198.51.100.7:40123"), Local: self, Transport: sipmsg.TLS}
	path := string(e.AppendPath(nil, f, true))
	require.True(t, strings.HasSuffix(path, "@203.0.113.2:5060;lr;ob>"), path)
	tests := []struct {
		name  string
		route string
		want  bool
		err   bool
	}{
		{"own token", path, true, false},
		{"another proxy", "<sip:tok@203.0.113.9;lr>", false, false},
		{"no token", "<sip:203.0.113.2:5060;lr>", false, false},
		{"forged", "<sip:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@203.0.113.2:5060;lr>", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m sipmsg.Message
			require.NoError(t, m.Parse([]byte("INVITE sip:alice@192.168.1.10 SIP/2.0\r\nRoute: "+tt.route+"\r\nContent-Length: 0\r\n\r\n")))
			got, ok, err := e.RouteFlow(&m)
			require.Equal(t, tt.err, err != nil, "%v", err)
			require.Equal(t, tt.want, ok)
			if ok {
				require.Equal(t, f, got)
			}
		})
	}
}

// MaxConns: one connection more than allowed is closed at accept and
// counted; the open ones keep their pongs.
func TestEdgeMaxConns(t *testing.T) {
	t.Parallel()
	te := newTestEdge(t, EdgeConfig{MaxConns: 2})
	addr := te.serve(t, sipmsg.TCP)
	a, b := dialEdge(t, addr), dialEdge(t, addr)
	ping(t, a)
	ping(t, b)
	c := dialEdge(t, addr)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "closed at accept")
	require.Equal(t, uint64(1), te.Refused())
	ping(t, a)
}

// MaxConnsPerSource: one source (an IPv4 address, an IPv6 /64) cannot hold
// more; another source still connects, and a closed connection frees its
// source's slot.
func TestEdgeMaxConnsPerSource(t *testing.T) {
	t.Parallel()
	te := newTestEdge(t, EdgeConfig{MaxConnsPerSource: 2})
	addr := te.serve(t, sipmsg.TCP)
	a, b := dialEdge(t, addr), dialEdge(t, addr)
	ping(t, a)
	ping(t, b)
	c := dialEdge(t, addr)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "a third from 127.0.0.1 is closed at accept")
	require.Equal(t, uint64(1), te.Refused())

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other, err := d.Dial("tcp", addr.String())
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	ping(t, other) // another source is served

	require.NoError(t, a.Close())
	require.Eventually(t, func() bool {
		c := dialEdge(t, addr)
		defer c.Close()
		_, err := c.Write([]byte("\r\n\r\n"))
		if err != nil {
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = io.ReadFull(c, make([]byte, 2))
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "the closed connection's slot is free again")
	ping(t, b)
}

func TestSourceOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2:a:b:c:d", "2001:db8:1:2::/64"},
	} {
		require.Equal(t, netip.MustParsePrefix(tt.want), sourceOf(netip.MustParseAddr(tt.addr)), tt.addr)
	}
	require.False(t, sourceOf(netip.Addr{}).IsValid())
}
