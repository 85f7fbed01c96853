package turn_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/turn"
)

// A UA that relays its RTP: allocate on the RTP socket, permit the peer
// from the SDP, then send and receive through the relay.
func ExampleClient() {
	rtp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return
	}
	defer rtp.Close()
	c, err := turn.New(rtp, turn.Config{
		Server:   netip.MustParseAddrPort("127.0.0.1:3478"),
		Username: "alice", Password: "secret",
		OnData: func(b []byte, peer netip.AddrPort) { /* relayed RTP from peer */ },
		RTO:    50 * time.Millisecond, Attempts: 2,
	})
	if err != nil {
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	a, err := c.Allocate(ctx)
	if err != nil {
		fmt.Println("no relay:", err != nil)
		return
	}
	peer := netip.MustParseAddrPort("198.51.100.2:7000")
	_ = c.Permit(ctx, peer)
	fmt.Println("c=IN IP4", a.Relayed.Addr(), "m=audio", a.Relayed.Port())
	_ = c.Send([]byte{0x80, 0, 0, 1}, peer)
}

// ChannelData (relayed media) is told apart from RTP, STUN and SIP by its
// first two bits.
func ExampleIsChannelData() {
	fmt.Println(turn.IsChannelData([]byte{0x40, 0x00, 0x00, 0x04, 0x80, 0, 0, 1}))
	fmt.Println(turn.IsChannelData([]byte{0x80, 0x00, 0x00, 0x01})) // RTP
	// Output:
	// true
	// false
}
