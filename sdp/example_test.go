package sdp_test

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sipnat/sipnat/sdp"
)

// The offer sipp sent from behind the lab's NAT, rewritten to the public
// address a STUN server reported, with the RTP port the NAT mapped.
func Example() {
	body := []byte("v=0\r\n" +
		"o=user1 53655765 2353687637 IN IP4 192.168.1.10\r\n" +
		"s=-\r\n" +
		"c=IN IP4 192.168.1.10\r\n" +
		"t=0 0\r\n" +
		"m=audio 6000 RTP/AVP 0\r\n" +
		"a=rtpmap:0 PCMU/8000\r\n")
	opts := &sdp.Options{
		Public: netip.MustParseAddr("203.0.113.1"),
		Ports:  []sdp.PortMap{{Local: 6000, Public: 41000}, {Local: 6001, Public: 41007}},
		Origin: true,
	}
	buf := make([]byte, 0, 512) // reuse it: AppendRewrite does not allocate
	buf, res, err := sdp.AppendRewrite(buf[:0], body, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Tests, "behind NAT:", res.Behind(), "edits:", res.Edits)
	fmt.Print(strings.ReplaceAll(string(buf), "\r\n", "\n")) // CRLF shown as LF
	// Output:
	// session-c|origin behind NAT: true edits: 4
	// v=0
	// o=user1 53655765 2353687637 IN IP4 203.0.113.1
	// s=-
	// c=IN IP4 203.0.113.1
	// t=0 0
	// m=audio 41000 RTP/AVP 0
	// a=rtpmap:0 PCMU/8000
	// a=rtcp:41007
}

// Check runs the NAT tests only and says where they fired.
func ExampleCheck() {
	res, err := sdp.Check([]byte("v=0\r\no=- 1 1 IN IP4 203.0.113.9\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.5\r\na=rtcp:4001 IN IP4 10.0.0.5\r\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for f := range res.Findings() {
		fmt.Println(f)
	}
	// Output:
	// media-c@m0 line 6 10.0.0.5
	// rtcp@m0 line 7 10.0.0.5
}

// A proxy asks whether a body names addresses other than where the
// message came from (Kamailio nat_uac_test 256) besides private ones.
func ExampleCheckFrom() {
	body := []byte("v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n")
	res, err := sdp.CheckFrom(body, netip.MustParseAddr("203.0.113.1"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Tests, res.Behind())
	// Output:
	// session-c|origin|c-differs true
}
