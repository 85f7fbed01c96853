package nat_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/nat"
)

// A STUN client on a socket the UA's own loop reads (SIP and STUN on one
// port): the client never reads (CallerReads); the loop hands it every
// packet first and keeps what it refuses. CheckDelivery proves the wiring
// before any silence is taken for "UDP blocked".
func ExampleClient_sharedSocket() {
	srvConn, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer srvConn.Close()
	srv, _ := nat.NewServer(nat.ServerConfig{Primary: srvConn})
	go srv.Serve(context.Background())
	defer srv.Close()

	sip, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	stun := nat.NewClient(sip, nat.ClientConfig{CallerReads: true})
	defer stun.Close()
	loopDone := make(chan struct{})
	go func() { // the SIP stack's read loop
		defer close(loopDone)
		buf := make([]byte, 65535)
		for {
			n, from, err := sip.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if stun.HandlePacket(buf[:n], from) {
				continue // a STUN answer, taken by the client
			}
			// ... SIP: the stack's own handling
		}
	}()
	defer func() { sip.Close(); <-loopDone }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("the loop hands STUN in:", stun.CheckDelivery(ctx) == nil)
	public, err := stun.Binding(ctx, srv.Addrs()[0])
	fmt.Println("public address found:", err == nil && public.IsValid())
	res, err := stun.Discover(ctx, nat.DiscoverConfig{Servers: []netip.AddrPort{srv.Addrs()[0]}})
	fmt.Println("discovered:", err == nil, res.Mapping)
	// Output:
	// the loop hands STUN in: true
	// public address found: true
	// discovered: true none
}

// The RFC 5780 server on four sockets: two addresses (127.0.0.1 and
// 127.0.0.2, both on lo on Linux) times two ports, so clients can run the
// full mapping and filtering tests against it.
func ExampleServer_fourSockets() {
	listen := func(ip net.IP, port int) *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			panic(err)
		}
		return c
	}
	lo1, lo2 := net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)
	primary, altPort := listen(lo1, 0), listen(lo1, 0)
	pp, ap := primary.LocalAddr().(*net.UDPAddr).Port, altPort.LocalAddr().(*net.UDPAddr).Port
	altAddr, altBoth := listen(lo2, pp), listen(lo2, ap)
	for _, c := range []*net.UDPConn{primary, altPort, altAddr, altBoth} {
		defer c.Close()
	}
	srv, err := nat.NewServer(nat.ServerConfig{Primary: primary, AltPort: altPort, AltAddr: altAddr, AltBoth: altBoth})
	if err != nil {
		panic(err)
	}
	go srv.Serve(context.Background())
	defer srv.Close()

	conn := listen(lo1, 0)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := nat.Discover(ctx, conn, srv.Addrs()[0])
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Method, res.Mapping, res.Filtering, res.Classic)
	// Output: rfc5780 none none open internet
}
