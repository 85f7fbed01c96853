package rtpengine_test

import (
	"fmt"

	"github.com/sipnat/sipnat/rtpengine"
)

// An offer as it goes on the wire, and a reply decoded without copying.
func Example() {
	req := rtpengine.AppendRequest(nil, []byte("5a1f"), &rtpengine.Request{
		Command: rtpengine.Offer, CallID: []byte("c1"), FromTag: []byte("t1"), SDP: []byte("v=0\r\n"),
		Options: rtpengine.Options{TrustAddress: true, ReplaceOrigin: true, ICE: rtpengine.ICERemove},
	})
	fmt.Printf("%q\n", req)

	var d rtpengine.Decoder
	rep, err := rtpengine.ParseReply(&d, rtpengine.Offer, []byte("d6:result2:ok3:sdp5:v=0\r\ne"), nil)
	fmt.Printf("%s %q %v\n", rep.Result, rep.SDP, err)

	_, err = rtpengine.ParseReply(&d, rtpengine.Offer, []byte("d6:result2:ok3:sdp9:v=0e"), nil)
	fmt.Println(err)
	// Output:
	// "5a1f d7:command5:offer7:call-id2:c18:from-tag2:t13:sdp5:v=0\r\n5:flagsl13:trust-addresse7:replacel6:origine3:ICE6:removee"
	// ok "v=0\r\n" <nil>
	// rtpengine: malformed reply: malformed bencode at byte 20: string length 9 past the end of input
}
