package turnrelay_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/agent/turnrelay"
	"github.com/sipnat/sipnat/turn"
)

// An agent that relays media through a TURN server where its plan needs it.
func ExampleNew() {
	sip, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	rtp, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer sip.Close()
	defer rtp.Close()
	a, err := agent.New(agent.Config{
		SIP: sip, Media: []net.PacketConn{rtp}, Registrar: netip.MustParseAddrPort("127.0.0.1:5060"),
		NewRelay: turnrelay.New(turn.Config{Server: netip.MustParseAddrPort("127.0.0.1:3478"),
			Username: "alice", Password: "secret"}),
	})
	fmt.Println(err)
	defer a.Close()
	// Output: <nil>
}
