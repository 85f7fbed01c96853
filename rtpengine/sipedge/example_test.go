package sipedge_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/rtpengine/sipedge"
	"github.com/sipnat/sipnat/sipmsg"
)

// The marks an edge leaves in a dialog with a NATed party, and how it reads
// them back on a BYE.
func Example() {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client := rtpengine.NewClient(conn, rtpengine.ClientConfig{})
	defer client.Close()
	set, _ := rtpengine.NewSet(rtpengine.SetConfig{Client: client, Instances: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:2223")}})
	self := netip.MustParseAddrPort("203.0.113.3:5060")
	relay, _ := sipedge.New(sipedge.Config{Set: set, Self: self, Key: []byte("the edge's secret")})

	var invite sipmsg.Message
	_ = invite.Parse([]byte("INVITE sip:bob@198.51.100.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bKa\r\n" +
		"From: <sip:alice@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	fmt.Printf("Record-Route: %s\n", sipedge.AppendRecordRoute(nil, self, true))
	// the edge's own Via, signed for this INVITE: only a response that
	// brings this Via back is taken as its answer
	fmt.Printf("Via: %s\n", relay.AppendViaMark([]byte("SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp1"), &invite, sipedge.Offered))

	var bye sipmsg.Message
	_ = bye.Parse([]byte("BYE sip:alice@192.168.1.10:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKb\r\n" +
		"Route: <sip:203.0.113.3:5060;lr;nat=yes>\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"))
	fmt.Println("NATed dialog:", sipedge.Marked(&bye, self))
	// Output:
	// Record-Route: <sip:203.0.113.3:5060;lr;nat=yes>
	// Via: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp1;rtpengine=offer-1f672b54d420658d
	// NATed dialog: true
}
