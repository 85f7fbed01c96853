package sipmsg_test

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sipnat/sipnat/sdp"
	"github.com/sipnat/sipnat/sipmsg"
)

// A proxy receives a REGISTER from a UA behind NAT, sees the NAT and fixes
// the message; the UA then learns its public address from the 200 OK.
func Example() {
	reg := []byte("REGISTER sip:203.0.113.2 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK-1;rport\r\n" +
		"From: <sip:alice@203.0.113.2>;tag=1\r\n" +
		"To: <sip:alice@203.0.113.2>\r\n" +
		"Call-ID: 1@192.168.1.10\r\n" +
		"CSeq: 1 REGISTER\r\n" +
		"m: <sip:alice@192.168.1.10:5070>\r\n" +
		"l: 0\r\n\r\n")
	src := netip.MustParseAddrPort("203.0.113.1:5070") // where the packet came from

	var m sipmsg.Message
	if err := m.Parse(reg); err != nil {
		panic(err)
	}
	fired, _ := m.NATTest(src, 19, nil) // nat_uac_test("19")
	fmt.Println("NAT tests:", fired)

	out, err := sipmsg.AppendFix(nil, &m, src, &sipmsg.Fix{Via: true, Contact: sipmsg.ContactAlias})
	if err != nil {
		panic(err)
	}
	var fixed sipmsg.Message
	_ = fixed.Parse(out)
	via, _ := fixed.Get(sipmsg.HdrVia)
	contact, _ := fixed.Get(sipmsg.HdrContact)
	fmt.Printf("Via: %s\nContact: %s\n", via, contact)
	fmt.Println("registrar stores:", string(sipmsg.AppendReceivedURI(nil, src, sipmsg.UDP)))

	// the UA side: the 200 OK echoes the fixed Via
	ok := []byte("SIP/2.0 200 OK\r\nVia: " + string(via) + "\r\nContent-Length: 0\r\n\r\n")
	var resp sipmsg.Message
	_ = resp.Parse(ok)
	registrar := netip.MustParseAddrPort("203.0.113.2:5060")
	tracker := sipmsg.NewContactTracker(netip.MustParseAddrPort("192.168.1.10:5070"), registrar, sipmsg.UDP)
	u := tracker.Observe(&resp, registrar) // responses from anywhere else are ignored
	fmt.Println("public:", u.Public, "re-register:", u.Reregister)
	fmt.Println("next Contact:", string(tracker.AppendContact(nil, "alice", "")))
	// Output:
	// NAT tests: contact-private|via-addr-differs
	// Via: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK-1;rport=5070;received=203.0.113.1
	// Contact: <sip:alice@192.168.1.10:5070;alias=203.0.113.1~5070~1>
	// registrar stores: sip:203.0.113.1:5070
	// public: 203.0.113.1:5070 re-register: true
	// next Contact: <sip:alice@203.0.113.1:5070>
}

// AppendOptions builds the OPTIONS keep-alive a UA sends to its proxy.
func ExampleAppendOptions() {
	b := sipmsg.AppendOptions(nil, sipmsg.OptionsRequest{
		RequestURI: "sip:203.0.113.2",
		From:       "sip:alice@example.com",
		SentBy:     netip.MustParseAddrPort("192.168.1.10:5060"),
		Branch:     "ka1",
		CallID:     "ka@192.168.1.10",
		CSeq:       1,
	})
	fmt.Print(strings.ReplaceAll(string(b), "\r\n", "\n"))
	// Output:
	// OPTIONS sip:203.0.113.2 SIP/2.0
	// Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKka1;rport
	// Max-Forwards: 70
	// From: <sip:alice@example.com>;tag=ka1
	// To: <sip:203.0.113.2>
	// Call-ID: ka@192.168.1.10
	// CSeq: 1 OPTIONS
	// Content-Length: 0
}

// NextFrame cuts messages and RFC 5626 keep-alives out of a TCP stream.
func ExampleNextFrame() {
	stream := []byte("\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhi" + "INVITE sip:")
	for {
		f, err := sipmsg.NextFrame(stream, 0)
		if err != nil || f.Kind == sipmsg.FrameNone {
			fmt.Println("need at least", f.Need, "more bytes")
			return
		}
		fmt.Println(f.Kind, f.Len)
		stream = stream[f.Len:]
	}
	// Output:
	// ping 4
	// message 35
	// need at least 1 more bytes
}

// A UA rewrites the SDP of its own INVITE to the public address STUN
// reported; Content-Length follows.
func ExampleAppendRewriteSDP() {
	body := "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	msg := fmt.Sprintf("INVITE sip:bob@203.0.113.2 SIP/2.0\r\nContent-Type: application/sdp\r\nl: %d\r\n\r\n%s", len(body), body)
	var m sipmsg.Message
	if err := m.Parse([]byte(msg)); err != nil {
		fmt.Println(err)
		return
	}
	out, _, err := sipmsg.AppendRewriteSDP(nil, &m, &sdp.Options{Public: netip.MustParseAddr("203.0.113.1")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(strings.ReplaceAll(string(out), "\r\n", "\n")) // CRLF shown as LF
	// Output:
	// INVITE sip:bob@203.0.113.2 SIP/2.0
	// Content-Type: application/sdp
	// l: 92
	//
	// v=0
	// o=- 1 1 IN IP4 192.168.1.10
	// s=-
	// c=IN IP4 203.0.113.1
	// t=0 0
	// m=audio 4000 RTP/AVP 0
}
