package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/sipnat/sipnat/nat"
)

// embeddedServer starts a full RFC 5780 server on 127.0.0.1 and 127.0.0.2
// (primary and alternate port on each) and returns it with its primary
// address. Closing it stops it and closes the sockets.
func embeddedServer() (*closer, netip.AddrPort, error) {
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	listen := func(a netip.Addr, port uint16) (*net.UDPConn, error) {
		return net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port)))
	}
	var lastErr error
	for range 20 { // the ports picked on 127.0.0.1 may be taken on 127.0.0.2
		var conns []*net.UDPConn
		closeAll := func() {
			for _, c := range conns {
				c.Close()
			}
		}
		p, err := listen(lo1, 0)
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		conns = append(conns, p)
		ap, err := listen(lo1, 0)
		if err != nil {
			closeAll()
			return nil, netip.AddrPort{}, err
		}
		conns = append(conns, ap)
		pp, altp := p.LocalAddr().(*net.UDPAddr).AddrPort().Port(), ap.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		aa, err1 := listen(lo2, pp)
		if err1 == nil {
			conns = append(conns, aa)
		}
		ab, err2 := listen(lo2, altp)
		if err2 == nil {
			conns = append(conns, ab)
		}
		if err1 != nil || err2 != nil {
			lastErr = errors.Join(err1, err2)
			closeAll()
			continue
		}
		srv, err := nat.NewServer(nat.ServerConfig{Primary: p, AltPort: ap, AltAddr: aa, AltBoth: ab})
		if err != nil {
			closeAll()
			return nil, netip.AddrPort{}, err
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(context.Background()) }()
		c := &closer{f: func() {
			srv.Close()
			<-done
			closeAll()
		}}
		return c, netip.AddrPortFrom(lo1, pp), nil
	}
	return nil, netip.AddrPort{}, fmt.Errorf("no free ports on 127.0.0.1 and 127.0.0.2: %w", lastErr)
}

type closer struct{ f func() }

func (c *closer) Close() { c.f() }
