package sipmsg_test

import (
	"fmt"
	"net/netip"

	"github.com/sipnat/sipnat/sipmsg"
)

// DetectALG on a REGISTER and its answer: the registrar (a public address)
// reports a private received= address, which no packet from the internet
// can carry: a SIP ALG in the router rewrote the answer on its way back.
func ExampleDetectALG() {
	var req, resp sipmsg.Message
	_ = req.Parse([]byte("REGISTER sip:203.0.113.2 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-1;rport\r\n" +
		"From: <sip:alice@203.0.113.2>;tag=1\r\nTo: <sip:alice@203.0.113.2>\r\nCall-ID: a1\r\nCSeq: 1 REGISTER\r\n" +
		"Contact: <sip:alice@203.0.113.1:5060>\r\nContent-Length: 0\r\n\r\n"))
	_ = resp.Parse([]byte("SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-1;rport=5060;received=192.168.1.10\r\n" +
		"From: <sip:alice@203.0.113.2>;tag=1\r\nTo: <sip:alice@203.0.113.2>;tag=2\r\nCall-ID: a1\r\nCSeq: 1 REGISTER\r\n" +
		"Contact: <sip:alice@203.0.113.1:5060>;expires=300\r\nContent-Length: 0\r\n\r\n"))
	rep, err := sipmsg.DetectALG(&req, &resp, netip.MustParseAddrPort("203.0.113.2:5060"))
	fmt.Println(rep.Tampered(), rep.Signs, err)
	// Output: true received-private <nil>
}

// HandleRURIAlias, Kamailio's handle_ruri_alias: a request for a NATed UA
// whose registered Contact carried ;alias is sent to the address the alias
// names, with the alias removed from the Request-URI.
func ExampleHandleRURIAlias() {
	var m sipmsg.Message
	_ = m.Parse([]byte("INVITE sip:alice@192.168.1.10:5060;alias=203.0.113.1~40312~1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 198.51.100.2:5060;branch=z9hG4bK-2\r\n" +
		"From: <sip:bob@198.51.100.2>;tag=b\r\nTo: <sip:alice@203.0.113.2>\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	out, alias, found, err := sipmsg.HandleRURIAlias(nil, &m, nil)
	fmt.Println(found, alias.Addr, alias.Transport, err)
	var fwd sipmsg.Message
	_ = fwd.Parse(out)
	fmt.Println(string(fwd.RequestURI()))
	// Output:
	// true 203.0.113.1:40312 UDP <nil>
	// sip:alice@192.168.1.10:5060
}
