package sipmsg

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func parseFile(t *testing.T, name string) *Message {
	t.Helper()
	b, err := os.ReadFile("testdata/lab/" + name)
	require.NoError(t, err)
	m := new(Message)
	require.NoError(t, m.Parse(b))
	return m
}

// registrar is where the trackers of these tests register.
var registrar = netip.MustParseAddrPort("203.0.113.2:5060")

func TestContactTrackerGolden(t *testing.T) {
	t.Parallel()
	local := netip.MustParseAddrPort("192.168.1.10:5070")
	ct := NewContactTracker(local, registrar, UDP)
	require.Equal(t, local, ct.Advertised())
	require.False(t, ct.Behind())

	// kamailio's 200 OK as the UA received it behind eim-apdf without ALG
	u := ct.Observe(parseFile(t, "register-200-noalg-lan.sip"), registrar)
	require.True(t, u.Reregister)
	require.Equal(t, netip.MustParseAddrPort("203.0.113.1:5070"), u.Public)
	require.Equal(t, local, u.Previous)
	require.Equal(t, netip.MustParseAddrPort("203.0.113.1:5070"), ct.Advertised())
	require.True(t, ct.Behind())
	require.Equal(t, "<sip:alice@203.0.113.1:5070;ob>", string(ct.AppendContact(nil, "alice", ";ob")))
	require.Equal(t, "203.0.113.1:5070", string(ct.AppendSentBy(nil)))
	// the same answer again: nothing to do
	u = ct.Observe(parseFile(t, "register-200-noalg-lan.sip"), registrar)
	require.False(t, u.Reregister)
	require.Equal(t, ct.Learned(), u.Public)
	require.Equal(t, local, ct.Local())
	require.Equal(t, "SIP/2.0/UDP 203.0.113.1:5070;branch=z9hG4bKx1;rport", string(ct.AppendVia(nil, "x1")))

}

func TestContactTracker(t *testing.T) {
	t.Parallel()
	resp := func(via string) *Message {
		m := new(Message)
		require.NoError(t, m.Parse([]byte("SIP/2.0 200 OK\r\nVia: "+via+"\r\nContent-Length: 0\r\n\r\n")))
		return m
	}
	local := netip.MustParseAddrPort("[fd00::10]:5060")
	ct := NewContactTracker(local, registrar, TCP)
	require.False(t, ct.Observe(resp("SIP/2.0/TCP [fd00::10]:5060;branch=z9hG4bK1"), registrar).Reregister, "no received: no NAT")
	u := ct.Observe(resp("SIP/2.0/TCP [fd00::10]:5060;branch=z9hG4bK1;received=2001:db8::7;rport=40001"), registrar)
	require.True(t, u.Reregister)
	require.Equal(t, netip.MustParseAddrPort("[2001:db8::7]:40001"), ct.Advertised())
	require.Equal(t, "<sip:bob@[2001:db8::7]:40001;transport=tcp>", string(ct.AppendContact(nil, "bob", "")))
	// NAT rebinding: a new public port
	u = ct.Observe(resp("SIP/2.0/TCP [fd00::10]:5060;branch=z9hG4bK2;received=2001:db8::7;rport=40002"), registrar)
	require.True(t, u.Reregister)
	require.Equal(t, netip.MustParseAddrPort("[2001:db8::7]:40001"), u.Previous)
	// received without rport value: sent-by port
	u = ct.Observe(resp("SIP/2.0/TCP [fd00::10]:5060;branch=z9hG4bK3;received=2001:db8::7;rport"), registrar)
	require.Equal(t, netip.MustParseAddrPort("[2001:db8::7]:5060"), u.Public)
	// a request or garbage says nothing
	m := new(Message)
	require.NoError(t, m.Parse([]byte("OPTIONS sip:a@b SIP/2.0\r\n\r\n")))
	require.False(t, ct.Observe(m, registrar).Reregister)
	require.False(t, ct.Observe(resp("SIP/2.0/TCP host.example.com;branch=z9hG4bK1"), registrar).Reregister)
}

// TestContactTrackerSpoofed: a third party that forges a response (from
// another address, or without the branch of the last REGISTER) cannot
// change the UA's learned public address; the registrar's answer can.
func TestContactTrackerSpoofed(t *testing.T) {
	t.Parallel()
	local := netip.MustParseAddrPort("192.168.1.10:5070")
	ct := NewContactTracker(local, registrar, UDP)
	via := string(ct.AppendVia(nil, "reg1"))
	resp := func(via string) *Message {
		m := new(Message)
		require.NoError(t, m.Parse([]byte("SIP/2.0 200 OK\r\nVia: "+via+"\r\nContent-Length: 0\r\n\r\n")))
		return m
	}
	evil := strings.Replace(via, ";rport", ";rport=6666;received=198.51.100.66", 1)
	for name, tc := range map[string]struct {
		m    *Message
		from netip.AddrPort
	}{
		"other source":     {resp(evil), netip.MustParseAddrPort("198.51.100.66:5060")},
		"registrar port":   {resp(evil), netip.MustParseAddrPort("203.0.113.2:5061")},
		"forged source":    {resp(strings.Replace(evil, "z9hG4bKreg1", "z9hG4bKguess", 1)), registrar},
		"no branch":        {resp("SIP/2.0/UDP 192.168.1.10:5070;rport=6666;received=198.51.100.66"), registrar},
		"malformed answer": {resp("garbage"), registrar},
	} {
		u := ct.Observe(tc.m, tc.from)
		require.True(t, u.Ignored, name)
		require.False(t, u.Reregister, name)
		require.Equal(t, local, ct.Advertised(), name)
		require.False(t, ct.Learned().IsValid(), name)
	}
	// the registrar's answer, also when its address arrives IPv4-mapped
	good := strings.Replace(via, ";rport", ";rport=40000;received=203.0.113.1", 1)
	u := ct.Observe(resp(good), netip.MustParseAddrPort("[::ffff:203.0.113.2]:5060"))
	require.False(t, u.Ignored)
	require.True(t, u.Reregister)
	require.Equal(t, netip.MustParseAddrPort("203.0.113.1:40000"), ct.Advertised())
	// a late answer to an older REGISTER is ignored once a new one is sent
	_ = ct.AppendVia(nil, "z9hG4bKreg2")
	require.True(t, ct.Observe(resp(good), registrar).Ignored)
}

func TestDetectALGGolden(t *testing.T) {
	t.Parallel()
	server := netip.MustParseAddrPort("203.0.113.2:5060")
	tests := []struct {
		req, resp string
		want      ALGSign
	}{
		// what the UA sent and received on the LAN side
		{"register-noalg-lan.sip", "register-200-noalg-lan.sip", 0},
		{"register-alg-lan.sip", "register-200-alg-lan.sip", ALGReceivedPrivate},
		{"invite-noalg-lan.sip", "invite-404-noalg-lan.sip", 0},
		{"invite-alg-lan.sip", "invite-404-alg-lan.sip", ALGReceivedPrivate}, // any response with received= shows it
	}
	for _, tt := range tests {
		r, err := DetectALG(parseFile(t, tt.req), parseFile(t, tt.resp), server)
		require.NoError(t, err)
		require.Equal(t, tt.want, r.Signs, "%s: %v", tt.req, r.Signs)
		require.Equal(t, tt.want != 0, r.Tampered())
	}
}

func TestDetectALG(t *testing.T) {
	t.Parallel()
	reqS := "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1;rport\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.168.1.10:5060>\r\nContent-Length: 0\r\n\r\n"
	server := netip.MustParseAddrPort("203.0.113.2:5060")
	tests := []struct {
		name string
		resp string
		want ALGSign
	}{
		{"clean", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1;rport=40000;received=203.0.113.1\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.168.1.10:5060>;expires=60;received=\"sip:203.0.113.1:40000\"\r\nContent-Length: 0\r\n\r\n", 0},
		{"via rewritten, not mapped back", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1;rport=40000;received=203.0.113.1\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: c1\r\nContent-Length: 0\r\n\r\n", ALGViaChanged},
		{"contact stored rewritten", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1;rport=40000;received=203.0.113.1\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: c1\r\nContact: <sip:alice@203.0.113.1:40000>;expires=60\r\nContent-Length: 0\r\n\r\n", ALGContactChanged},
		{"from and call-id changed", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1;rport=40000;received=203.0.113.1\r\nFrom: <sip:alice@203.0.113.1>;tag=1\r\nCall-ID: c2\r\nContent-Length: 0\r\n\r\n", ALGFromChanged | ALGCallIDChanged},
		{"received private", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1;rport=5060;received=192.168.1.10\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: c1\r\nContent-Length: 0\r\n\r\n", ALGReceivedPrivate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var q, s Message
			require.NoError(t, q.Parse([]byte(reqS)))
			require.NoError(t, s.Parse([]byte(tt.resp)))
			r, err := DetectALG(&q, &s, server)
			require.NoError(t, err)
			require.Equal(t, tt.want, r.Signs, r.Signs.String())
		})
	}
	// a private server (same LAN) may see a private source
	var q, s Message
	require.NoError(t, q.Parse([]byte(reqS)))
	require.NoError(t, s.Parse([]byte(tests[4].resp)))
	r, err := DetectALG(&q, &s, netip.MustParseAddrPort("192.168.1.1:5060"))
	require.NoError(t, err)
	require.Zero(t, r.Signs)
	_, err = DetectALG(&s, &q, server)
	require.ErrorIs(t, err, ErrNotRequest)
	_, err = DetectALG(&q, &q, server)
	require.ErrorIs(t, err, ErrNotResponse)
	require.Equal(t, "via-changed|received-private", (ALGViaChanged | ALGReceivedPrivate).String())
	require.Equal(t, "none", ALGSign(0).String())
}

// TestGoldenKernelALG documents, from the captures, what the Linux SIP ALG
// (nf_nat_sip) changed between the LAN and the WAN side of the NAT: Via
// sent-by, Contact, From, SDP o=/c= and Content-Length, but not Call-ID;
// and on the way back it mapped received= to the UA's private address.
func TestGoldenKernelALG(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"register", "invite"} {
		lan := parseFile(t, name+"-alg-lan.sip")
		wan := parseFile(t, name+"-alg-wan.sip")
		lb, wb := lan.Bytes(), wan.Bytes()
		lv, err := lan.ParseTopVia()
		require.NoError(t, err)
		wv, err := wan.ParseTopVia()
		require.NoError(t, err)
		require.Equal(t, "192.168.1.10", string(lv.Host.In(lb)))
		require.Equal(t, "203.0.113.1", string(wv.Host.In(wb)))
		require.Equal(t, lv.Port, wv.Port, "port preserved by eim-apdf")
		lc, _ := lan.Get(HdrContact)
		wc, _ := wan.Get(HdrContact)
		require.Equal(t, strings.ReplaceAll(string(lc), "192.168.1.10", "203.0.113.1"), string(wc))
		lf, _ := lan.Get(HdrFrom)
		wf, _ := wan.Get(HdrFrom)
		require.Equal(t, strings.ReplaceAll(string(lf), "192.168.1.10", "203.0.113.1"), string(wf))
		li, _ := lan.Get(HdrCallID)
		wi, _ := wan.Get(HdrCallID)
		require.Equal(t, string(li), string(wi), "Call-ID left alone")
		require.Equal(t, strings.ReplaceAll(string(lan.Body()), "192.168.1.10", "203.0.113.1"), string(wan.Body()))
		// without the ALG the packet crosses the NAT unchanged
		require.Equal(t, string(parseFile(t, name+"-noalg-lan.sip").Bytes()), string(parseFile(t, name+"-noalg-wan.sip").Bytes()))
	}
	inv := parseFile(t, "invite-alg-wan.sip")
	cl, _ := inv.Get(HdrContentLength)
	require.Equal(t, "240", string(cl), "the ALG pads the shorter number: 'Content-Length:   240'")
	resp := parseFile(t, "register-200-alg-lan.sip")
	v, err := resp.ParseTopVia()
	require.NoError(t, err)
	a, ok := v.ReceivedAddr(resp.Bytes())
	require.True(t, ok)
	require.Equal(t, "192.168.1.10", a.String(), "kamailio wrote 203.0.113.1; the ALG mapped it back")
}

func TestAnswers(t *testing.T) {
	t.Parallel()
	parse := func(s string) *Message {
		m := new(Message)
		require.NoError(t, m.Parse([]byte(s)))
		return m
	}
	req := parse("REGISTER sip:r SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKr1;rport\r\nCSeq: 7 REGISTER\r\nl: 0\r\n\r\n")
	resp := func(via, cseq string) *Message {
		return parse("SIP/2.0 200 OK\r\nVia: " + via + "\r\nCSeq: " + cseq + "\r\nl: 0\r\n\r\n")
	}
	require.True(t, resp("SIP/2.0/UDP 203.0.113.1:40000;branch=z9hG4bKr1;rport=40000;received=203.0.113.1", "7 REGISTER").Answers(req), "an ALG may rewrite sent-by")
	require.False(t, resp("SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKguess;received=198.51.100.66", "7 REGISTER").Answers(req))
	require.False(t, resp("SIP/2.0/UDP 192.168.1.2:5060;received=198.51.100.66", "7 REGISTER").Answers(req))
	require.False(t, resp("SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKr1", "6 REGISTER").Answers(req))
	require.False(t, req.Answers(req), "a request answers nothing")
}
