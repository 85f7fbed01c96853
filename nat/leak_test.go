package nat

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/leakcheck"
)

// The leak tests are not parallel: leakcheck counts every goroutine.

// TestLeakClient: a Client that succeeded, timed out, was cancelled and
// was closed with a transaction in flight leaves no goroutine or socket.
func TestLeakClient(t *testing.T) {
	leakcheck.Check(t)
	srvConn := listenUDP(t, "127.0.0.1:0")
	srv, err := NewServer(ServerConfig{Primary: srvConn})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	dead := listenUDP(t, "127.0.0.1:0") // never answers

	for _, callerReads := range []bool{false, true} {
		conn := listenUDP(t, "127.0.0.1:0")
		c := NewClient(conn, ClientConfig{RTO: 5 * time.Millisecond, Rc: 2, Rm: 2, CallerReads: callerReads})
		readDone := make(chan struct{})
		if callerReads {
			go func() { // the caller's read loop
				defer close(readDone)
				buf := make([]byte, 1500)
				for {
					n, from, err := conn.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					c.HandlePacket(buf[:n], from)
				}
			}()
		} else {
			close(readDone)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.Binding(ctx, srv.Addrs()[0])
		require.NoError(t, err)
		_, err = c.Binding(ctx, dead.LocalAddr().(*net.UDPAddr).AddrPort())
		require.ErrorIs(t, err, ErrNoResponse)
		cctx, ccancel := context.WithCancel(ctx)
		ccancel()
		_, err = c.Binding(cctx, dead.LocalAddr().(*net.UDPAddr).AddrPort())
		require.Error(t, err)
		// Close while a transaction waits: it ends with an error
		inflight := make(chan error, 1)
		go func() {
			_, err := c.BindingWith(ctx, netip.MustParseAddrPort("127.0.0.1:9"), BindingOptions{RTO: time.Second})
			inflight <- err
		}()
		require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.txs) == 1 }, 5*time.Second, time.Millisecond)
		require.NoError(t, c.Close())
		require.Error(t, <-inflight)
		cancel()
		require.NoError(t, conn.Close())
		<-readDone
	}
	require.NoError(t, srv.Close())
	require.NoError(t, <-done)
}

// TestLeakServerSocketFails: when one of a Server's sockets is closed under
// Serve, Serve returns and no reader of the other sockets is left behind.
func TestLeakServerSocketFails(t *testing.T) {
	leakcheck.Check(t)
	a := listenUDP(t, "127.0.0.1:0")
	b := listenUDP(t, "127.0.0.1:0")
	s, err := NewServer(ServerConfig{Primary: a, AltPort: b})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	require.NoError(t, a.Close()) // the caller closes a socket under the server
	select {
	case err := <-done:
		require.NoError(t, err, "a socket the caller closed is a stop")
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return when a socket failed")
	}
	require.NoError(t, s.Close())
	// the other socket is usable again: no deadline left on it
	require.NoError(t, b.SetWriteDeadline(time.Time{}))
	_, err = b.WriteToUDPAddrPort([]byte("x"), b.LocalAddr().(*net.UDPAddr).AddrPort())
	require.NoError(t, err)
	buf := make([]byte, 4)
	n, _, err := b.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	require.Equal(t, "x", string(buf[:n]))
}
