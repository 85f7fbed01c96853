package nat

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/stretchr/testify/require"
)

// listenUDP opens a UDP socket on addr (loopback) closed at cleanup.
func listenUDP(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// startServer runs a Server on loopback: with full set, on 127.0.0.1 and
// 127.0.0.2 with two ports each, else only a primary socket.
func startServer(t testing.TB, full bool) *Server {
	t.Helper()
	cfg := ServerConfig{Primary: listenUDP(t, "127.0.0.1:0")}
	if full {
		p := callerconn.AddrPortOf(cfg.Primary.LocalAddr()).Port()
		var alt *net.UDPConn
		for range 20 {
			alt = listenUDP(t, "127.0.0.1:0")
			a := callerconn.AddrPortOf(alt.LocalAddr()).Port()
			c2, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: int(p)})
			if err != nil {
				continue
			}
			c3, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: int(a)})
			if err != nil {
				_ = c2.Close()
				continue
			}
			t.Cleanup(func() { _ = c2.Close(); _ = c3.Close() })
			cfg.AltPort, cfg.AltAddr, cfg.AltBoth = alt, c2, c3
			break
		}
		require.NotNil(t, cfg.AltBoth, "no free alternate ports")
	}
	s, err := NewServer(cfg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		require.NoError(t, <-done)
	})
	return s
}
