package nat

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDiscoverSharedSocket: Discover on a socket that another goroutine
// already reads (a SIP stack's loop) says so within a second, instead of
// reporting UDP blocked after the whole timeout.
func TestDiscoverSharedSocket(t *testing.T) {
	t.Parallel()
	srv := startServer(t, true)
	conn := listenUDP(t, "127.0.0.1:0")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the UA's own read loop, which eats everything
		defer close(done)
		buf := make([]byte, 2048)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, _, err := conn.ReadFrom(buf)
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				return
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	defer func() { close(stop); conn.Close(); <-done }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Discover(ctx, conn, srv.Addrs()[0])
	if err == nil {
		// The kernel may wake Discover's reader for every packet; then
		// the answers did arrive and the result is right.
		require.Equal(t, None, res.Mapping)
		return
	}
	require.ErrorIs(t, err, ErrSharedSocket)
	require.Contains(t, err.Error(), "another goroutine must be reading the socket")
	require.NoError(t, ctx.Err(), "reported before the timeout")
}

// TestCheckDeliveryCallerReads: a CallerReads client whose caller never
// hands packets in is told so.
func TestCheckDeliveryCallerReads(t *testing.T) {
	t.Parallel()
	conn := listenUDP(t, "127.0.0.1:0")
	c := NewClient(conn, ClientConfig{CallerReads: true})
	defer c.Close()
	err := c.CheckDelivery(context.Background())
	require.ErrorIs(t, err, ErrSharedSocket)
	require.Contains(t, err.Error(), "does not hand STUN packets to HandlePacket")

	go func() { // now a loop that hands packets in
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.HandlePacket(buf[:n], from)
		}
	}()
	require.NoError(t, c.CheckDelivery(context.Background()))
}
