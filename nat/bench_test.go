package nat

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/stretchr/testify/require"
)

// echoConn is a net.PacketConn whose writes are answered at once, in the
// writer's goroutine, by a Server's request handling and handed to the
// client's HandlePacket: a whole transaction without a socket or scheduler.
type echoConn struct {
	srv    *Server
	out    stun.Message
	local  netip.AddrPort
	handle func(b []byte, from netip.AddrPort) bool
	last   []byte
}

func newEchoConn(tb testing.TB) *echoConn {
	s, err := NewServer(ServerConfig{Primary: listenUDP(tb, "127.0.0.1:0"), Rate: 1e12, Burst: 1 << 30, TotalRate: 1e12})
	require.NoError(tb, err)
	e := &echoConn{srv: s, local: netip.MustParseAddrPort("192.0.2.10:5060")}
	e.out.Raw = make([]byte, 0, 128)
	return e
}

func (e *echoConn) WriteToUDPAddrPort(b []byte, dst netip.AddrPort) (int, error) {
	if _, _, ok := e.srv.respond(0, b, e.local, &e.out); ok {
		if e.handle != nil {
			e.handle(e.out.Raw, dst)
		}
		e.last = e.out.Raw
	}
	return len(b), nil
}

func (e *echoConn) WriteTo(b []byte, a net.Addr) (int, error) {
	return e.WriteToUDPAddrPort(b, a.(*net.UDPAddr).AddrPort())
}
func (e *echoConn) ReadFrom([]byte) (int, net.Addr, error) { select {} }

// ReadFromUDPAddrPort makes echoConn look like a *net.UDPConn to the
// client, which then sends with WriteToUDPAddrPort (no net.UDPAddr).
func (e *echoConn) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) { select {} }
func (e *echoConn) Close() error                                            { return nil }
func (e *echoConn) LocalAddr() net.Addr                                     { return net.UDPAddrFromAddrPort(e.local) }
func (e *echoConn) SetDeadline(time.Time) error                             { return nil }
func (e *echoConn) SetReadDeadline(time.Time) error                         { return nil }
func (e *echoConn) SetWriteDeadline(time.Time) error                        { return nil }

func TestTransactionAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	e := newEchoConn(t)
	c := NewClient(e, ClientConfig{CallerReads: true})
	defer c.Close()
	e.handle = c.HandlePacket
	srv := e.srv.Addrs()[0]
	ctx := context.Background()
	want, err := c.Binding(ctx, srv)
	require.NoError(t, err)
	require.Equal(t, e.local, want)
	allocs := testing.AllocsPerRun(200, func() {
		if got, err := c.Binding(ctx, srv); err != nil || got != want {
			t.Fatalf("binding: %v %v", got, err)
		}
	})
	require.Zero(t, allocs, "allocations per transaction")
	dctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	require.Zero(t, testing.AllocsPerRun(200, func() {
		if _, err := c.BindingWith(dctx, srv, BindingOptions{ChangePort: false, ResponsePort: 0}); err != nil {
			t.Fatal(err)
		}
	}), "allocations per transaction with a deadline context")

	var m stun.Message
	var id [12]byte
	require.Zero(t, testing.AllocsPerRun(200, func() { buildRequest(&m, id, BindingOptions{ChangePort: true, ResponsePort: 9}) }))
	resp := append([]byte(nil), e.last...)
	require.Zero(t, testing.AllocsPerRun(200, func() {
		if _, _, err := decodeAnswer(&m, resp); err != nil {
			t.Fatal(err)
		}
	}))
	require.Zero(t, testing.AllocsPerRun(200, func() { _ = IsSTUN(resp) }))
	require.Zero(t, testing.AllocsPerRun(200, func() {
		if _, err := ParseResponse(resp); err != nil {
			t.Fatal(err)
		}
	}))
}

// BenchmarkBuildRequest: a Binding request with FINGERPRINT and a fresh
// transaction ID, ours against plain pion/stun usage.
func BenchmarkBuildRequest(b *testing.B) {
	b.Run("sipnat", func(b *testing.B) {
		c := NewClient(newEchoConn(b), ClientConfig{CallerReads: true})
		defer c.Close()
		var m stun.Message
		var id [12]byte
		b.ReportAllocs()
		for range b.N {
			_, _ = c.rng.Read(id[:])
			buildRequest(&m, id, BindingOptions{})
		}
	})
	b.Run("pion", func(b *testing.B) {
		m := new(stun.Message)
		b.ReportAllocs()
		for range b.N {
			if err := m.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeResponse: decode a success response (XOR-MAPPED-ADDRESS,
// RESPONSE-ORIGIN, OTHER-ADDRESS, FINGERPRINT), check the fingerprint and
// read the three addresses, as RFC 5780 discovery needs them.
func BenchmarkDecodeResponse(b *testing.B) {
	srv := startServer(b, true)
	local := netip.MustParseAddrPort("192.0.2.10:5060")
	var req, out stun.Message
	buildRequest(&req, [12]byte{1, 2, 3}, BindingOptions{})
	_, _, ok := srv.respond(0, req.Raw, local, &out)
	require.True(b, ok)
	resp := append([]byte(nil), out.Raw...)
	b.Run("sipnat", func(b *testing.B) {
		var m stun.Message
		var r Response
		b.ReportAllocs()
		b.SetBytes(int64(len(resp)))
		for range b.N {
			_, err := decodeAnswerInto(&m, resp, &r)
			if err != nil || !r.Mapped.IsValid() {
				b.Fatal(err)
			}
		}
	})
	b.Run("pion", func(b *testing.B) {
		m := new(stun.Message)
		var xa stun.XORMappedAddress
		var other stun.OtherAddress
		var origin stun.ResponseOrigin
		b.ReportAllocs()
		b.SetBytes(int64(len(resp)))
		for range b.N {
			m.Raw = append(m.Raw[:0], resp...)
			if err := m.Decode(); err != nil {
				b.Fatal(err)
			}
			if err := stun.Fingerprint.Check(m); err != nil {
				b.Fatal(err)
			}
			if err := xa.GetFrom(m); err != nil {
				b.Fatal(err)
			}
			if err := other.GetFrom(m); err != nil {
				b.Fatal(err)
			}
			if err := origin.GetFrom(m); err != nil {
				b.Fatal(err)
			}
			ap, ok := netip.AddrFromSlice(xa.IP)
			if !ok || ap.Unmap() != local.Addr() {
				b.Fatal("mapped address")
			}
		}
	})
}

// BenchmarkTransaction: one whole Binding transaction (build, send, answer
// in process, match, decode) through our Client, and the codec steps done by
// hand with pion/stun ("pion-by-hand": no retransmission timer, no matching
// among concurrent transactions, so a lower bound rather than a client; see
// BenchmarkTransactionUDP for pion's Client).
func BenchmarkTransaction(b *testing.B) {
	ctx := context.Background()
	b.Run("sipnat", func(b *testing.B) {
		e := newEchoConn(b)
		c := NewClient(e, ClientConfig{CallerReads: true})
		defer c.Close()
		e.handle = c.HandlePacket
		srv := e.srv.Addrs()[0]
		b.ReportAllocs()
		for range b.N {
			if _, err := c.Binding(ctx, srv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pion-by-hand", func(b *testing.B) {
		e := newEchoConn(b)
		srv := net.UDPAddrFromAddrPort(e.srv.Addrs()[0])
		req, resp := new(stun.Message), new(stun.Message)
		var xa stun.XORMappedAddress
		b.ReportAllocs()
		for range b.N {
			if err := req.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint); err != nil {
				b.Fatal(err)
			}
			if _, err := e.WriteTo(req.Raw, srv); err != nil {
				b.Fatal(err)
			}
			resp.Raw = append(resp.Raw[:0], e.last...)
			if err := resp.Decode(); err != nil || resp.TransactionID != req.TransactionID {
				b.Fatal("decode", err)
			}
			if err := stun.Fingerprint.Check(resp); err != nil {
				b.Fatal(err)
			}
			if err := xa.GetFrom(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTransactionUDP: a whole Binding transaction over loopback UDP to
// our server: our Client (reading the socket itself) against pion/stun's
// Client, the alternative a user would pick.
func BenchmarkTransactionUDP(b *testing.B) {
	s, err := NewServer(ServerConfig{Primary: listenUDP(b, "127.0.0.1:0"), Rate: 1e12, Burst: 1 << 30})
	require.NoError(b, err)
	go func() { _ = s.Serve(context.Background()) }()
	defer s.Close()
	srv := s.Addrs()[0]
	b.Run("sipnat", func(b *testing.B) {
		c := NewClient(listenUDP(b, "127.0.0.1:0"), ClientConfig{})
		defer c.Close()
		ctx := context.Background()
		b.ReportAllocs()
		for range b.N {
			if _, err := c.Binding(ctx, srv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pion", func(b *testing.B) {
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(srv))
		require.NoError(b, err)
		c, err := stun.NewClient(conn)
		require.NoError(b, err)
		defer c.Close()
		var xa stun.XORMappedAddress
		var derr error
		b.ReportAllocs()
		for range b.N {
			m := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
			if err := c.Do(m, func(e stun.Event) {
				if derr = e.Error; derr == nil {
					derr = xa.GetFrom(e.Message)
				}
			}); err != nil || derr != nil {
				b.Fatal(err, derr)
			}
		}
	})
}
