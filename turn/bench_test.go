package turn_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/turn"
)

// benchClient allocates on a fake server and binds fakePeer's channel, with
// a socket the benchmark reads itself afterwards (CallerReads).
func benchClient(b *testing.B) (*turn.Client, *net.UDPConn, *fakeServer) {
	s := newFakeServer(b)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c, err := turn.New(conn, turn.Config{Server: s.addr, Username: fakeUser, Password: fakePass, CallerReads: true, KeepAlive: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	stop := make(chan struct{})
	go func() { // hand answers in until the setup is done
		defer close(stop)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.HandlePacket(buf[:n], from)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Allocate(ctx); err != nil {
		b.Fatal(err)
	}
	if err := c.Permit(ctx, fakePeer); err != nil {
		b.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Unix(1, 0))
	<-stop
	_ = conn.SetReadDeadline(time.Time{})
	return c, conn, s
}

// BenchmarkSend: one 172-byte RTP packet (20 ms of PCMU) sent on loopback,
// directly and relayed as ChannelData; the difference is TURN's cost.
func BenchmarkSend(b *testing.B) {
	pkt := make([]byte, 172)
	pkt[0] = 0x80
	b.Run("direct", func(b *testing.B) {
		_, conn, s := benchClient(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(pkt)))
		for i := 0; i < b.N; i++ {
			if _, err := conn.WriteToUDPAddrPort(pkt, s.addr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("channeldata", func(b *testing.B) {
		c, _, _ := benchClient(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(pkt)))
		for i := 0; i < b.N; i++ {
			if err := c.Send(pkt, fakePeer); err != nil {
				b.Fatal(err)
			}
		}
	})
	// over TCP: a bare write of the same framed bytes on a loopback TCP
	// connection, and the client's Send (framing, bounded write)
	b.Run("tcp-direct", func(b *testing.B) {
		s := newFakeServer(b)
		conn, err := net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(s.listenStream(b)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		frame := append([]byte{0x40, 0, 0, byte(len(pkt))}, pkt...)
		b.ReportAllocs()
		b.SetBytes(int64(len(pkt)))
		for i := 0; i < b.N; i++ {
			if _, err := conn.Write(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tcp-channeldata", func(b *testing.B) {
		c := streamClient(b, newFakeServer(b), nil)
		b.ReportAllocs()
		b.SetBytes(int64(len(pkt)))
		for i := 0; i < b.N; i++ {
			if err := c.Send(pkt, fakePeer); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReceive: one packet written on loopback and read, directly and
// as ChannelData from the server unwrapped by HandlePacket.
func BenchmarkReceive(b *testing.B) {
	pkt := make([]byte, 172)
	pkt[0] = 0x80
	run := func(b *testing.B, c *turn.Client, from *net.UDPConn, to *net.UDPConn, msg []byte) {
		dst := to.LocalAddr().(*net.UDPAddr).AddrPort()
		buf := make([]byte, 2048)
		b.ReportAllocs()
		b.SetBytes(int64(len(pkt)))
		for i := 0; i < b.N; i++ {
			if _, err := from.WriteToUDPAddrPort(msg, dst); err != nil {
				b.Fatal(err)
			}
			n, src, err := to.ReadFromUDPAddrPort(buf)
			if err != nil {
				b.Fatal(err)
			}
			if c != nil {
				if p, _, ok := c.HandlePacket(buf[:n], netip.AddrPortFrom(src.Addr().Unmap(), src.Port())); !ok || len(p) != len(pkt) {
					b.Fatal("not relayed media")
				}
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		_, conn, s := benchClient(b)
		run(b, nil, s.conn, conn, pkt)
	})
	b.Run("channeldata", func(b *testing.B) {
		c, conn, s := benchClient(b)
		frame, err := c.AppendFrame(nil, pkt, fakePeer)
		if err != nil || !turn.IsChannelData(frame) {
			b.Fatal("no channel", err)
		}
		run(b, c, s.conn, conn, frame)
	})
}

// BenchmarkFrame: TURN's own work per packet without the system calls:
// framing a 172-byte packet as ChannelData, and taking one apart.
func BenchmarkFrame(b *testing.B) {
	c, _, s := benchClient(b)
	pkt := make([]byte, 172)
	buf := make([]byte, 0, 256)
	frame, _ := c.AppendFrame(nil, pkt, fakePeer)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf, _ = c.AppendFrame(buf[:0], pkt, fakePeer)
		}
	})
	b.Run("handle", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.HandlePacket(frame, s.addr)
		}
	})
}
