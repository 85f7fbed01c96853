package sipnat_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/binding"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sdp"
)

// Example composes the packages the way a UA does, on loopback: STUN on
// the UA's own SIP socket finds the address the server sees, Reconcile
// picks what goes into Contact, the SDP's private address is rewritten to
// it, and binding says how often to keep the binding open while its
// lifetime is unknown (o= is rewritten only with Options.Origin). Package
// agent does all of this in one import.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// A STUN server (an operator's, here on loopback).
	srvConn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srvConn.Close()
	srv, err := nat.NewServer(nat.ServerConfig{Primary: srvConn})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	go srv.Serve(ctx)

	// The UA's SIP socket, and STUN on it.
	sipConn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sipConn.Close()
	stun := nat.NewClient(sipConn, nat.ClientConfig{})
	defer stun.Close()
	mapped, err := stun.Binding(ctx, netip.MustParseAddrPort(srvConn.LocalAddr().String()))
	if err != nil {
		fmt.Println(err)
		return
	}

	local := netip.MustParseAddrPort(sipConn.LocalAddr().String())
	fmt.Println("STUN sees the socket's own address (no NAT on loopback):", mapped == local)

	choice := discovery.Reconcile(discovery.Observations{Local: local, STUN: mapped})
	fmt.Println("Contact from:", choice.Source, choice.Contact.Addr())

	offer := []byte("v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n")
	out, _, err := sdp.AppendRewrite(nil, offer, &sdp.Options{Public: choice.Contact.Addr()})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(strings.ReplaceAll(string(out), "\r\n", "\n")) // CRLF kept byte-exact; LF to print
	fmt.Println("keep-alive every", binding.KeepAliveInterval(0))
	// Output:
	// STUN sees the socket's own address (no NAT on loopback): true
	// Contact from: local 127.0.0.1
	// v=0
	// o=- 1 1 IN IP4 192.168.1.10
	// s=-
	// c=IN IP4 127.0.0.1
	// t=0 0
	// m=audio 4000 RTP/AVP 0
	// keep-alive every 25s
}
