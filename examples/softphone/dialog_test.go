package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sipmsg"
)

// The requests of a dialog (RFC 3261 §12): the phone as UAS (an INVITE it
// answered) keeps the Record-Route in order and swaps From and To; as UAC
// (the 2xx to its INVITE) it reverses the Record-Route and takes the
// Contact as remote target.
func TestDialogRequests(t *testing.T) {
	t.Parallel()
	invite := "INVITE sip:alice@203.0.113.1:40001;transport=tcp SIP/2.0\r\n" +
		"Via: SIP/2.0/TCP 203.0.113.2;branch=z9hG4bKk\r\nVia: SIP/2.0/UDP 198.51.100.2:5090;branch=z9hG4bKb\r\n" +
		"Record-Route: <sip:203.0.113.2;transport=tcp;r2=on;lr>\r\nRecord-Route: <sip:203.0.113.2;r2=on;lr>\r\n" +
		"From: <sip:bob@198.51.100.2>;tag=b1\r\nTo: <sip:alice@203.0.113.2>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\n" +
		"Contact: <sip:bob@198.51.100.2:5090>\r\nContent-Length: 0\r\n\r\n"
	ok := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.1:5062;branch=z9hG4bKa\r\n" +
		"Record-Route: <sip:p2;lr>\r\nRecord-Route: <sip:p1;lr>\r\n" +
		"From: <sip:alice@203.0.113.2>;tag=a1\r\nTo: <sip:bob@198.51.100.2>;tag=b2\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:bob@198.51.100.2:5090;transport=udp>;expires=60\r\nContent-Length: 0\r\n\r\n"
	var im, om sipmsg.Message
	require.NoError(t, im.Parse([]byte(invite)))
	require.NoError(t, om.Parse([]byte(ok)))
	contact := []byte("<sip:alice@203.0.113.1:40002;transport=tcp>")
	for _, tt := range []struct {
		name    string
		d       *dialog
		method  string
		contact []byte
		body    []byte
		want    string
	}{
		{"UAS: re-INVITE with the new Contact", uasDialog(&im, "a9"), "INVITE", contact, []byte("v=0"),
			"INVITE sip:bob@198.51.100.2:5090 SIP/2.0\r\nVia: SIP/2.0/TCP 192.168.1.10:40002;branch=z9hG4bKr;rport\r\n" +
				"Route: <sip:203.0.113.2;transport=tcp;r2=on;lr>, <sip:203.0.113.2;r2=on;lr>\r\nMax-Forwards: 70\r\n" +
				"From: <sip:alice@203.0.113.2>;tag=a9\r\nTo: <sip:bob@198.51.100.2>;tag=b1\r\nCall-ID: c1\r\nCSeq: 2 INVITE\r\n" +
				"Contact: <sip:alice@203.0.113.1:40002;transport=tcp>\r\nContent-Type: application/sdp\r\n" +
				"User-Agent: sipnat-softphone\r\nContent-Length: 3\r\n\r\nv=0"},
		{"UAC: BYE", uacDialog(&om, "sip:bob@198.51.100.2", "<sip:alice@203.0.113.2>;tag=a1", 1), "BYE", nil, nil,
			"BYE sip:bob@198.51.100.2:5090;transport=udp SIP/2.0\r\nVia: SIP/2.0/TCP 192.168.1.10:40002;branch=z9hG4bKr;rport\r\n" +
				"Route: <sip:p1;lr>, <sip:p2;lr>\r\nMax-Forwards: 70\r\n" +
				"From: <sip:alice@203.0.113.2>;tag=a1\r\nTo: <sip:bob@198.51.100.2>;tag=b2\r\nCall-ID: c2\r\nCSeq: 2 BYE\r\n" +
				"User-Agent: sipnat-softphone\r\nContent-Length: 0\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.d.request(tt.method, 2, "SIP/2.0/TCP 192.168.1.10:40002", "z9hG4bKr", tt.contact, tt.body)
			require.Equal(t, tt.want, string(got))
			var m sipmsg.Message
			require.NoError(t, m.Parse(got), "a well-formed request")
		})
	}
}
