package sdppion_test

import (
	"fmt"
	"net/netip"

	psdp "github.com/pion/sdp/v3"

	"github.com/sipnat/sipnat/sdp"
	"github.com/sipnat/sipnat/sdp/sdppion"
)

// RewriteSession is the same rewrite on a pion/sdp description.
func ExampleRewriteSession() {
	var sd psdp.SessionDescription
	if err := sd.Unmarshal([]byte("v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio 7078 RTP/AVP 0\r\n")); err != nil {
		fmt.Println(err)
		return
	}
	res, err := sdppion.RewriteSession(&sd, &sdp.Options{Public: netip.MustParseAddr("2001:db8::7")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res)
	fmt.Println(sd.ConnectionInformation)
	// Output:
	// tests=session-c|origin edits=1 [origin@session 10.1.2.3, session-c@session 10.1.2.3]
	// IN IP6 2001:db8::7
}
