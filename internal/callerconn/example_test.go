package callerconn_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/sipnat/sipnat/internal/callerconn"
)

// A client reads the caller's socket until its Close, then leaves the
// socket open for the caller.
func Example() {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	got := make(chan string, 1)
	l := callerconn.Start(conn, 1500, func(b []byte, from netip.AddrPort) {
		got <- string(b)
	}, nil)
	self := callerconn.AddrPortOf(conn.LocalAddr())
	_ = callerconn.WriteTo(conn, []byte("hello"), self)
	fmt.Println(<-got)
	l.Stop()
	_ = callerconn.WriteTo(conn, []byte("still open"), self)
	b := make([]byte, 64)
	n, _, _ := callerconn.ReadFrom(conn, b)
	fmt.Println(string(b[:n]))
	// Output:
	// hello
	// still open
}
