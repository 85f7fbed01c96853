package netlab

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TCPTimeout: an established connection idle past the router's TCP timeout
// is forgotten, and the server's next bytes never reach the client (the
// router does not adopt the unknown connection, as after a reboot); a
// connection refreshed more often survives. Also behind a CGN.
func TestTCPTimeout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		cgnat   bool
		refresh time.Duration // 0: idle
		want    bool
	}{
		{false, 0, false},
		{false, 1500 * time.Millisecond, true},
		{true, 0, false},
	}
	const timeout = 3 * time.Second
	for _, tc := range cases {
		t.Run(fmt.Sprintf("cgnat=%t/refresh=%v", tc.cgnat, tc.refresh), func(t *testing.T) {
			t.Parallel()
			lab := New(t, Config{Kind: EIMAPDF, TCPTimeout: timeout, CGNAT: tc.cgnat})
			require.Equal(t, timeout, lab.Truth().TCPTimeout)
			v, err := lab.Sysctl(RTR, "net.netfilter.nf_conntrack_tcp_timeout_established")
			require.NoError(t, err)
			require.Equal(t, "3", v)
			ln := lab.ListenTCP(WAN, netip.AddrPortFrom(Server1, 7000))
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					accepted <- c
				}
			}()
			cli := lab.DialTCP(LAN, netip.AddrPortFrom(Server1, 7000))
			require.NoError(t, cli.SetKeepAlive(false))
			srv := <-accepted
			defer srv.Close()
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { // the client's refreshes, and a reader that drops what it reads
				defer close(done)
				if tc.refresh == 0 {
					return
				}
				tick := time.NewTicker(tc.refresh)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						_, _ = cli.Write([]byte("\r\n\r\n"))
					}
				}
			}()
			go func() { _, _ = io.Copy(io.Discard, srv) }()
			idle := time.NewTimer(timeout + 2*time.Second)
			<-idle.C
			close(stop)
			<-done
			_, err = srv.Write([]byte("ping"))
			require.NoError(t, err)
			require.NoError(t, cli.SetReadDeadline(time.Now().Add(2*time.Second)))
			b := make([]byte, 4)
			_, err = io.ReadFull(cli, b)
			require.Equal(t, tc.want, err == nil, "server's bytes reached the client: %v", err)
		})
	}
}
