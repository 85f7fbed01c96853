package turnrelay_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/agent/turnrelay"
	"github.com/sipnat/sipnat/sipmsg"
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

// An agent whose relay is reached over TLS (where UDP is blocked, the
// default reaches it over TCP by itself): relayed media arrives through
// OnRelayedMedia, not through the RTP socket's read loop.
func ExampleNew_tls() {
	sip, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	rtp, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer sip.Close()
	defer rtp.Close()
	tlsDialer := &tls.Dialer{Config: &tls.Config{ServerName: "turn.example.com"}}
	a, err := agent.New(agent.Config{
		SIP: sip, Media: []net.PacketConn{rtp}, Registrar: netip.MustParseAddrPort("127.0.0.1:5060"),
		NewRelay: turnrelay.New(turn.Config{Server: netip.MustParseAddrPort("127.0.0.1:5349"),
			Username: "alice", Password: "secret", DialContext: tlsDialer.DialContext}),
		RelayTransport:  sipmsg.TLS,
		StreamKeepAlive: 30 * time.Second, // below the NAT's idle-TCP timeout
		OnRelayedMedia: func(i int, rtp []byte, peer netip.AddrPort) {
			// the same as the media HandleMediaPacket returns for relayed UDP
		},
	})
	fmt.Println(err)
	defer a.Close()
	// Output: <nil>
}
