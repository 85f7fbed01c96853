package sipedge_test

import (
	"fmt"
	"net/netip"

	"github.com/sipnat/sipnat/rtpengine/sipedge"
	"github.com/sipnat/sipnat/sipmsg"
)

// The marks an edge leaves in a dialog with a NATed party, and how it reads
// them back on a BYE.
func Example() {
	self := netip.MustParseAddrPort("203.0.113.3:5060")
	fmt.Printf("Record-Route: %s\n", sipedge.AppendRecordRoute(nil, self, true))
	fmt.Printf("Via: SIP/2.0/UDP %s;branch=z9hG4bK1%s\n", self, sipedge.AppendViaMark(nil, sipedge.Offered))

	var bye sipmsg.Message
	_ = bye.Parse([]byte("BYE sip:alice@192.168.1.10:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKb\r\n" +
		"Route: <sip:203.0.113.3:5060;lr;nat=yes>\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"))
	fmt.Println("NATed dialog:", sipedge.Marked(&bye, self))
	// Output:
	// Record-Route: <sip:203.0.113.3:5060;lr;nat=yes>
	// Via: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bK1;rtpengine=offer
	// NATed dialog: true
}
