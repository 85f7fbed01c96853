package nat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/stretchr/testify/require"
)

func TestClientLoopbackServer(t *testing.T) {
	t.Parallel()
	srv := startServer(t, true)
	conn := listenUDP(t, "127.0.0.1:0")
	c := NewClient(conn, ClientConfig{})
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	local := callerconn.AddrPortOf(conn.LocalAddr())
	primary := srv.Addrs()[0]

	mapped, err := c.Binding(ctx, primary)
	require.NoError(t, err)
	require.Equal(t, local, mapped)

	tests := []struct {
		name string
		o    BindingOptions
		from netip.AddrPort
	}{
		{"plain", BindingOptions{}, primary},
		{"change port", BindingOptions{ChangePort: true}, srv.Addrs()[1]},
		{"change ip", BindingOptions{ChangeIP: true}, srv.Addrs()[2]},
		{"change both", BindingOptions{ChangeIP: true, ChangePort: true}, srv.Addrs()[3]},
		{"no fingerprint", BindingOptions{NoFingerprint: true}, primary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.BindingWith(ctx, primary, tt.o)
			require.NoError(t, err)
			require.Equal(t, local, r.Mapped)
			require.True(t, r.XOR)
			require.Equal(t, tt.from, r.From)
			require.Equal(t, tt.from, r.Origin)
			require.Equal(t, srv.Addrs()[3], r.Other)
		})
	}
}

func TestClientServerError(t *testing.T) {
	t.Parallel()
	srv := startServer(t, false)
	c := NewClient(listenUDP(t, "127.0.0.1:0"), ClientConfig{})
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.BindingWith(ctx, srv.Addrs()[0], BindingOptions{ChangeIP: true})
	var se *ServerError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, 420, se.Code)
	require.Equal(t, uint64(1), srv.Stats().Errors)
}

// TestClientUnhandled: a client reading the socket itself hands packets that
// are not its answers to Unhandled.
func TestClientUnhandled(t *testing.T) {
	t.Parallel()
	srv := startServer(t, false)
	conn := listenUDP(t, "127.0.0.1:0")
	got := make(chan string, 1)
	c := NewClient(conn, ClientConfig{Unhandled: func(b []byte, _ netip.AddrPort) { got <- string(b) }})
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	peer := listenUDP(t, "127.0.0.1:0")
	_, err := peer.WriteToUDPAddrPort([]byte("\r\n\r\n"), callerconn.AddrPortOf(conn.LocalAddr()))
	require.NoError(t, err)
	require.Equal(t, "\r\n\r\n", <-got)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Binding(ctx, srv.Addrs()[0])
	require.NoError(t, err)
	require.NoError(t, c.Close())
	// After Close the socket is the caller's again, with no deadline left.
	_, err = peer.WriteToUDPAddrPort([]byte("x"), callerconn.AddrPortOf(conn.LocalAddr()))
	require.NoError(t, err)
	buf := make([]byte, 10)
	n, _, err := conn.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	require.Equal(t, "x", string(buf[:n]))
}

// TestClientIPv6 runs a transaction over IPv6 loopback.
func TestClientIPv6(t *testing.T) {
	t.Parallel()
	sc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	srv, err := NewServer(ServerConfig{Primary: sc})
	require.NoError(t, err)
	go func() { _ = srv.Serve(context.Background()) }()
	t.Cleanup(func() { _ = srv.Close() })
	cc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	c := NewClient(cc, ClientConfig{})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.BindingWith(ctx, srv.Addrs()[0], BindingOptions{})
	require.NoError(t, err)
	require.Equal(t, callerconn.AddrPortOf(cc.LocalAddr()), r.Mapped)
	require.True(t, r.Mapped.Addr().Is6())
	require.Equal(t, srv.Addrs()[0], r.Origin)
}
