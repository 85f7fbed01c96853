package callerconn

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/leakcheck"
)

func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// plainConn hides *net.UDPConn's AddrPort methods: the path of any other
// net.PacketConn.
type plainConn struct{ net.PacketConn }

// packets collects what a loop hands over.
type packets struct {
	ch chan string
}

func (p *packets) handle(b []byte, _ netip.AddrPort) { p.ch <- string(b) }

func (p *packets) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-p.ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no packet handed over")
		return ""
	}
}

func send(t *testing.T, to *net.UDPConn, s string) {
	t.Helper()
	from := listen(t)
	require.NoError(t, WriteTo(from, []byte(s), AddrPortOf(to.LocalAddr())))
}

// TestLoop: packets are handed over in order, Stop wakes a blocked read
// and leaves the socket open with no deadline, on both kinds of conn.
func TestLoop(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name string
		wrap func(*net.UDPConn) net.PacketConn
	}{
		{"udp", func(c *net.UDPConn) net.PacketConn { return c }},
		{"plain", func(c *net.UDPConn) net.PacketConn { return plainConn{c} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := listen(t)
			p := &packets{ch: make(chan string, 4)}
			l := Start(tc.wrap(conn), 1500, p.handle, func(err error) { t.Errorf("end called: %v", err) })
			send(t, conn, "one")
			send(t, conn, "two")
			require.Equal(t, "one", p.next(t))
			require.Equal(t, "two", p.next(t))
			l.Stop() // the reader is blocked in a read now
			<-l.Done()
			l.Stop() // again: nothing to do
			// the socket is open and has no deadline left
			send(t, conn, "after")
			b := make([]byte, 64)
			n, _, err := ReadFrom(conn, b)
			require.NoError(t, err)
			require.Equal(t, "after", string(b[:n]))
		})
	}
}

// TestLoopStopWhileHandling: Stop waits for the handle call under way.
func TestLoopStopWhileHandling(t *testing.T) {
	leakcheck.Check(t)
	conn := listen(t)
	in, release := make(chan struct{}), make(chan struct{})
	var handling atomic.Bool
	l := Start(conn, 1500, func([]byte, netip.AddrPort) {
		handling.Store(true)
		close(in)
		<-release
		handling.Store(false)
	}, nil)
	send(t, conn, "x")
	<-in
	stopped := make(chan struct{})
	go func() { l.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while handle was running")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-stopped
	require.False(t, handling.Load())
}

// TestLoopConcurrentStop: many Stops at once all return, and the deadline
// is cleared.
func TestLoopConcurrentStop(t *testing.T) {
	leakcheck.Check(t)
	conn := listen(t)
	l := Start(conn, 1500, func([]byte, netip.AddrPort) {}, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); l.Stop() }()
	}
	wg.Wait()
	send(t, conn, "open")
	b := make([]byte, 64)
	n, _, err := ReadFrom(conn, b)
	require.NoError(t, err)
	require.Equal(t, "open", string(b[:n]))
}

// TestLoopForeignDeadline: a read deadline someone else sets on the shared
// socket does not end the loop: it is cleared and reading goes on.
func TestLoopForeignDeadline(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name     string
		deadline time.Time
	}{
		{"past", time.Unix(1, 0)},
		{"soon", time.Now().Add(5 * time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := listen(t)
			p := &packets{ch: make(chan string, 4)}
			l := Start(conn, 1500, p.handle, func(err error) { t.Errorf("end called: %v", err) })
			defer l.Stop()
			require.NoError(t, conn.SetReadDeadline(tc.deadline))
			// a packet sent after the deadline expired is still handed over
			giveUp := time.Now().Add(5 * time.Second)
			for {
				sent := time.Now()
				send(t, conn, "ping")
				select {
				case s := <-p.ch:
					require.Equal(t, "ping", s)
					if sent.After(tc.deadline) {
						return
					}
				case <-time.After(50 * time.Millisecond):
					require.True(t, time.Now().Before(giveUp), "loop stopped reading after a foreign deadline")
				}
			}
		})
	}
}

// TestLoopClosedByCaller: when the caller closes the socket the loop ends
// and end gets the error once; Stop afterwards returns at once.
func TestLoopClosedByCaller(t *testing.T) {
	leakcheck.Check(t)
	conn := listen(t)
	ends := make(chan error, 2)
	l := Start(conn, 1500, func([]byte, netip.AddrPort) {}, func(err error) { ends <- err })
	require.NoError(t, conn.Close())
	select {
	case err := <-ends:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("end not called after the socket was closed")
	}
	<-l.Done()
	l.Stop()
	require.Empty(t, ends, "end called once")
}

// TestLoopStopBeforeRead: Stop right after Start (the goroutine may not
// have read yet) returns and calls no end.
func TestLoopStopBeforeRead(t *testing.T) {
	leakcheck.Check(t)
	for range 50 {
		conn := listen(t)
		l := Start(conn, 1500, func([]byte, netip.AddrPort) {}, func(err error) { t.Errorf("end: %v", err) })
		l.Stop()
		_ = conn.Close()
	}
}

// fakeAddr is a net.Addr known only by its String.
type fakeAddr string

func (a fakeAddr) Network() string { return "fake" }
func (a fakeAddr) String() string  { return string(a) }

func TestAddrPortOf(t *testing.T) {
	t.Parallel()
	v4 := netip.MustParseAddrPort("192.0.2.1:5060")
	for _, tc := range []struct {
		name string
		in   net.Addr
		want netip.AddrPort
	}{
		{"udp", net.UDPAddrFromAddrPort(v4), v4},
		{"mapped", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[::ffff:192.0.2.1]:5060")), v4},
		{"v6", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[2001:db8::1]:5060")), netip.MustParseAddrPort("[2001:db8::1]:5060")},
		{"tcp", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5060}, v4},
		{"tcp mapped", net.TCPAddrFromAddrPort(netip.MustParseAddrPort("[::ffff:192.0.2.1]:5060")), v4},
		{"other", fakeAddr("192.0.2.1:5060"), v4},
		{"other mapped", fakeAddr("[::ffff:192.0.2.1]:5060"), v4},
		{"nil", nil, netip.AddrPort{}},
		{"not an address", &net.UnixAddr{Name: "/tmp/x", Net: "unixgram"}, netip.AddrPort{}},
	} {
		require.Equal(t, tc.want, AddrPortOf(tc.in), tc.name)
	}
}

// TestReadFromMapped: a dual-stack socket's IPv4 sources come out as IPv4.
func TestReadFromMapped(t *testing.T) {
	t.Parallel()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Skip("no dual-stack socket:", err)
	}
	defer c.Close()
	from := listen(t)
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), AddrPortOf(c.LocalAddr()).Port())
	require.NoError(t, WriteTo(from, []byte("x"), dst))
	b := make([]byte, 16)
	for _, pc := range []net.PacketConn{c, plainConn{c}} {
		require.NoError(t, WriteTo(from, []byte("x"), dst))
		_, src, err := ReadFrom(pc, b)
		require.NoError(t, err)
		require.Equal(t, AddrPortOf(from.LocalAddr()), src)
		require.True(t, src.Addr().Is4())
	}
}

func TestWriteReadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a, b := listen(t), listen(t)
	dst := AddrPortOf(b.LocalAddr())
	msg, buf := []byte("x"), make([]byte, 16)
	allocs := testing.AllocsPerRun(100, func() {
		if err := WriteTo(a, msg, dst); err != nil {
			panic(err)
		}
		if _, _, err := ReadFrom(b, buf); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
}

// TestClaim: what the client claims stays its own; the rest goes to the
// caller's function, or is dropped without one.
func TestClaim(t *testing.T) {
	t.Parallel()
	mine := func(b []byte, _ netip.AddrPort) bool { return string(b) == "mine" }
	for _, tc := range []struct {
		in      string
		hasRest bool
		rest    string
	}{
		{"mine", true, ""},
		{"yours", true, "yours"},
		{"yours", false, ""},
	} {
		var got string
		var rest func([]byte, netip.AddrPort)
		if tc.hasRest {
			rest = func(b []byte, _ netip.AddrPort) { got = string(b) }
		}
		Claim(mine, rest)([]byte(tc.in), netip.AddrPort{})
		require.Equal(t, tc.rest, got, tc)
	}
}

// TestServe: Serve hands packets over until ctx ends, then returns nil and
// leaves the socket open without a deadline; a socket the caller closes
// while ctx runs ends it with the read error.
func TestServe(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name    string
		end     func(cancel context.CancelFunc, conn *net.UDPConn)
		wantErr error
		open    bool
	}{
		{"ctx ends", func(cancel context.CancelFunc, _ *net.UDPConn) { cancel() }, nil, true},
		{"closed", func(_ context.CancelFunc, conn *net.UDPConn) { _ = conn.Close() }, net.ErrClosed, false},
		{"closed after ctx", func(cancel context.CancelFunc, conn *net.UDPConn) { cancel(); _ = conn.Close() }, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := listen(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := &packets{ch: make(chan string, 4)}
			done := make(chan error, 1)
			go func() { done <- Serve(ctx, conn, 1500, p.handle) }()
			send(t, conn, "one")
			require.Equal(t, "one", p.next(t))
			tc.end(cancel, conn)
			select {
			case err := <-done:
				if tc.wantErr == nil {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Serve did not return")
			}
			if !tc.open {
				return
			}
			send(t, conn, "after")
			b := make([]byte, 64)
			n, _, err := ReadFrom(conn, b)
			require.NoError(t, err)
			require.Equal(t, "after", string(b[:n]))
		})
	}
}
