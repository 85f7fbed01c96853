package nat_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/sipnat/sipnat/nat"
)

// A STUN server and a client on loopback: the client learns its socket's
// public address (here its own, since there is no NAT) and Discover
// classifies the path.
func Example() {
	srvConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	defer srvConn.Close()
	srv, err := nat.NewServer(nat.ServerConfig{Primary: srvConn})
	if err != nil {
		panic(err)
	}
	go srv.Serve(context.Background())
	defer srv.Close()

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	c := nat.NewClient(conn, nat.ClientConfig{})
	public, err := c.Binding(ctx, srv.Addrs()[0])
	if err != nil {
		panic(err)
	}
	c.Close()
	fmt.Println("public address is the local one:", public.String() == conn.LocalAddr().String())

	res, err := nat.Discover(ctx, conn, srv.Addrs()[0])
	if err != nil {
		panic(err)
	}
	fmt.Println("method:", res.Method)
	fmt.Println("mapping:", res.Mapping)
	fmt.Println("relay needed:", res.SIP.MediaRelay)
	// Output:
	// public address is the local one: true
	// method: basic
	// mapping: none
	// relay needed: false
}

// IsSTUN tells STUN from SIP on a shared socket.
func ExampleIsSTUN() {
	fmt.Println(nat.IsSTUN([]byte("OPTIONS sip:alice@example.com SIP/2.0\r\n\r\n")))
	fmt.Println(nat.IsSTUN([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))
	// Output:
	// false
	// true
}
