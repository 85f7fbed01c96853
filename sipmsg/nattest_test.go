package sipmsg

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func req(via, contact, body string) []byte {
	s := "INVITE sip:bob@example.com SIP/2.0\r\nVia: " + via + "\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
	if contact != "" {
		s += "Contact: " + contact + "\r\n"
	}
	if body != "" {
		s += "Content-Type: application/sdp\r\n"
	}
	s += "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	return []byte(s)
}

func itoa(n int) string { return string(appendPort(nil, uint16(n))) }

const sdpPriv = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
const sdpPub = "v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
const sdpOther = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
const sdpV6 = "v=0\r\no=- 1 1 IN IP6 fd00::10\r\ns=-\r\nc=IN IP6 fd00::10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

func TestNATTest(t *testing.T) {
	t.Parallel()
	pub := netip.MustParseAddrPort("203.0.113.1:5060")
	pub6 := netip.MustParseAddrPort("[2001:db8::1]:5060")
	tests := []struct {
		name  string
		msg   []byte
		src   netip.AddrPort
		tests NATTest
		want  NATTest
	}{
		{"no nat", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "<sip:a@203.0.113.1:5060>", sdpPub), pub, AllNATTests, 0},
		{"no nat default port", req("SIP/2.0/UDP 203.0.113.1;branch=z9hG4bK1", "<sip:a@203.0.113.1>", ""), pub, AllNATTests, 0},
		{"contact private", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "<sip:a@192.168.1.10:5060>", ""), pub, ContactPrivate, ContactPrivate},
		{"contact cgnat", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "<sip:a@100.64.1.2:5060>", ""), pub, ContactPrivate, ContactPrivate},
		{"contact second value private", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "<sip:a@203.0.113.1:5060>, sip:a@10.0.0.1", ""), pub, ContactPrivate, ContactPrivate},
		{"contact public", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "<sip:a@198.51.100.7:5060>", ""), pub, ContactPrivate, 0},
		{"contact hostname", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "<sip:a@pc.example.com>", ""), pub, ContactPrivate | ContactDiffers, ContactDiffers},
		{"contact star", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "*", ""), pub, ContactPrivate | ContactDiffers, 0},
		{"via addr differs", req("SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1", "", ""), pub, ViaAddrDiffers, ViaAddrDiffers},
		{"via hostname differs", req("SIP/2.0/UDP pc.example.com:5060;branch=z9hG4bK1", "", ""), pub, ViaAddrDiffers | ViaPrivate, ViaAddrDiffers},
		{"via private", req("SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1", "", ""), pub, ViaPrivate, ViaPrivate},
		{"via port differs", req("SIP/2.0/UDP 203.0.113.1:5070;branch=z9hG4bK1", "", ""), pub, ViaPortDiffers, ViaPortDiffers},
		{"via default port differs", req("SIP/2.0/UDP 203.0.113.1;branch=z9hG4bK1", "", ""), netip.MustParseAddrPort("203.0.113.1:40000"), ViaPortDiffers, ViaPortDiffers},
		{"via tls default 5061", req("SIP/2.0/TLS 203.0.113.1;branch=z9hG4bK1", "", ""), netip.MustParseAddrPort("203.0.113.1:5061"), ViaPortDiffers, 0},
		{"source private", req("SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1", "", ""), netip.MustParseAddrPort("192.168.1.10:5060"), SourcePrivate | ViaAddrDiffers, SourcePrivate},
		{"contact port differs", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "<sip:a@203.0.113.1:5070>", ""), pub, ContactDiffers, ContactDiffers},
		{"contact addr differs", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "<sip:a@198.51.100.7:5060>", ""), pub, ContactDiffers, ContactDiffers},
		{"contact tcp default port", req("SIP/2.0/TCP 203.0.113.1;branch=z9hG4bK1", "<sips:a@203.0.113.1>", ""), netip.MustParseAddrPort("203.0.113.1:5061"), ContactDiffers, 0},
		{"sdp private", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "", sdpPriv), pub, SDPPrivate, SDPPrivate},
		{"sdp public", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "", sdpPub), pub, SDPPrivate | SDPDiffers, 0},
		{"sdp differs", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "", sdpOther), pub, SDPPrivate | SDPDiffers, SDPDiffers},
		{"sdp v6 private", req("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1", "", sdpV6), pub6, SDPPrivate | SDPDiffers, SDPPrivate | SDPDiffers},
		{"kamailio 19 behind nat", req("SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport", "<sip:a@192.168.1.10:5070>", ""), netip.MustParseAddrPort("203.0.113.1:5070"), 19, ContactPrivate | ViaAddrDiffers},
		{"ipv6 all", req("SIP/2.0/UDP [fd00::10]:5062;branch=z9hG4bK1", "<sip:a@[fd00::10]:5062>", sdpV6), pub6, AllNATTests,
			ContactPrivate | ViaAddrDiffers | ViaPrivate | SDPPrivate | ViaPortDiffers | ContactDiffers | SDPDiffers},
		{"ipv6 no nat", req("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1", "<sip:a@[2001:db8::1]>", ""), pub6, AllNATTests, 0},
		{"ipv4-mapped source", req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", "<sip:a@203.0.113.1>", ""), netip.MustParseAddrPort("[::ffff:203.0.113.1]:5060"), AllNATTests, 0},
		{"only selected tests", req("SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "<sip:a@192.168.1.10:5070>", sdpPriv), pub, ViaPortDiffers, ViaPortDiffers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m Message
			require.NoError(t, m.Parse(tt.msg))
			got, err := m.NATTest(tt.src, tt.tests, SDPNATCheck)
			require.NoError(t, err)
			require.Equal(t, tt.want, got, "got %v want %v", got, tt.want)
		})
	}
}

func TestNATTestErrors(t *testing.T) {
	t.Parallel()
	var m Message
	require.NoError(t, m.Parse(req("SIP/2.0/UDP", "<sip:a@192.168.1.10", "")))
	got, err := m.NATTest(netip.MustParseAddrPort("203.0.113.1:5060"), AllNATTests, nil)
	require.ErrorIs(t, err, ErrMalformed)
	require.Zero(t, got)
	require.Equal(t, "none", NATTest(0).String())
	require.Equal(t, "contact-private|via-addr-differs|via-port-differs", NATTest(19).String())
}

// TestNATTestGolden runs the tests on what kamailio received in the lab:
// the REGISTER from sipp behind eim-apdf, without and with the kernel ALG.
// Kamailio's nat_uac_test("19") fired without the ALG and stored a
// received address; with the ALG it saw nothing (ul.dump in testdata/lab).
func TestNATTestGolden(t *testing.T) {
	t.Parallel()
	src := netip.MustParseAddrPort("203.0.113.1:5070")
	for _, tt := range []struct {
		file string
		want NATTest
	}{
		{"testdata/lab/register-noalg-wan.sip", ContactPrivate | ViaAddrDiffers | ViaPrivate | ContactDiffers},
		{"testdata/lab/register-alg-wan.sip", 0},
		{"testdata/lab/invite-noalg-wan.sip", ContactPrivate | ViaAddrDiffers | ViaPrivate | ContactDiffers | SDPPrivate | SDPDiffers},
		{"testdata/lab/invite-alg-wan.sip", 0},
	} {
		b, err := os.ReadFile(tt.file)
		require.NoError(t, err)
		var m Message
		require.NoError(t, m.Parse(b))
		src := src
		if m.IsMethod("INVITE") {
			src = netip.MustParseAddrPort("203.0.113.1:5072") // sipp's INVITE socket
		}
		got, err := m.NATTest(src, AllNATTests, SDPNATCheck)
		require.NoError(t, err)
		require.Equal(t, tt.want, got, "%s: got %v", tt.file, got)
	}
}

func TestNATTestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	b := req("SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport", "<sip:a@192.168.1.10:5070>", sdpPriv)
	var m Message
	require.NoError(t, m.Parse(b))
	src := netip.MustParseAddrPort("203.0.113.1:5070")
	n := testing.AllocsPerRun(100, func() { _, _ = m.NATTest(src, AllNATTests, SDPNATCheck) })
	require.Zero(t, n)
}

// TestManyContacts goes past the cached Contacts: the tenth is private and
// all ten are rewritten.
func TestManyContacts(t *testing.T) {
	t.Parallel()
	var cs []string
	for i := 1; i <= 9; i++ {
		cs = append(cs, "<sip:u"+itoa(i)+"@203.0.113.1:5060>")
	}
	in := req("SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK1", strings.Join(cs[:5], ", ")+"\r\nm: "+strings.Join(cs[5:], ",")+", sip:u10@10.0.0.1;expires=5", "")
	var m Message
	require.NoError(t, m.Parse(in))
	src := netip.MustParseAddrPort("203.0.113.1:5060")
	got, err := m.NATTest(src, ContactPrivate|ContactDiffers, nil)
	require.NoError(t, err)
	require.Equal(t, ContactPrivate|ContactDiffers, got)
	out, err := AppendFix(nil, &m, src, &Fix{Contact: ContactRewrite})
	require.NoError(t, err)
	require.Equal(t, strings.Replace(string(in), "u10@10.0.0.1;", "u10@203.0.113.1:5060;", 1), string(out))
	var n int
	it := m.contactIter()
	for it.next() {
		require.NoError(t, it.err)
		n++
	}
	require.Equal(t, 10, n)
}
