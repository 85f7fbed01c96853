package sipmsg

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendRemoveTopValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		k              HeaderKind
		removed        bool
	}{
		{"own line", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n",
			"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n", HdrVia, true},
		{"first of list", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1, SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n",
			"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n", HdrVia, true},
		{"route", "INVITE sip:a@b SIP/2.0\r\nRoute: <sip:p;lr>,<sip:q;lr>\r\nl: 0\r\n\r\n",
			"INVITE sip:a@b SIP/2.0\r\nRoute: <sip:q;lr>\r\nl: 0\r\n\r\n", HdrRoute, true},
		{"none", "INVITE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", "INVITE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", HdrRoute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m Message
			require.NoError(t, m.Parse([]byte(tt.in)))
			out, removed, err := AppendRemoveTopValue(nil, &m, tt.k)
			require.NoError(t, err)
			require.Equal(t, tt.removed, removed)
			require.Equal(t, tt.want, string(out))
			require.NoError(t, m.Parse(out))
		})
	}
}

func TestAppendInsertTop(t *testing.T) {
	t.Parallel()
	in := "INVITE sip:a@b SIP/2.0\r\nMax-Forwards: 70\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n"
	var m Message
	require.NoError(t, m.Parse([]byte(in)))
	out, err := AppendInsertTop(nil, &m, HdrVia, []byte("SIP/2.0/UDP 203.0.113.3;branch=z9hG4bKp"))
	require.NoError(t, err)
	require.Equal(t, strings.Replace(in, "v: ", "Via: SIP/2.0/UDP 203.0.113.3;branch=z9hG4bKp\r\nv: ", 1), string(out))
	out, err = AppendInsertTop(nil, &m, HdrRoute, []byte("<sip:p;lr>"))
	require.NoError(t, err)
	require.Equal(t, strings.Replace(in, "z9hG4bK2\r\n", "z9hG4bK2\r\nRoute: <sip:p;lr>\r\n", 1), string(out))
	_, err = AppendInsertTop(nil, &m, HdrOther, nil)
	require.ErrorIs(t, err, ErrMalformed)
}

// threePass forwards m the way a proxy had to before the forwarding edits:
// AppendFix, parse, remove the own Route, parse, insert the own Via.
func threePass(t testing.TB, m *Message, src, self netip.AddrPort, f Fix) []byte {
	t.Helper()
	via, route := f.AddVia, f.RemoveRoute
	f.AddVia, f.RemoveRoute = nil, netip.AddrPort{}
	b, err := AppendFix(nil, m, src, &f)
	require.NoError(t, err)
	var m2 Message
	require.NoError(t, m2.Parse(b))
	if route.IsValid() && m2.ownRoutes(self, netip.AddrPort{}) > 0 {
		b, _, err = AppendRemoveTopValue(nil, &m2, HdrRoute)
		require.NoError(t, err)
		require.NoError(t, m2.Parse(b))
	}
	b, err = AppendInsertTop(nil, &m2, HdrVia, via)
	require.NoError(t, err)
	return b
}

func TestFixForwardingEdits(t *testing.T) {
	t.Parallel()
	self := netip.MustParseAddrPort("203.0.113.3:5060")
	src := netip.MustParseAddrPort("198.51.100.7:40000")
	via := []byte("SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp1")
	rr := []byte("<sip:203.0.113.3:5060;lr>")
	const invite = "INVITE sip:bob@203.0.113.2 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.168.1.10:5072;branch=z9hG4bK-1;rport\r\n" +
		"%sFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n" +
		"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.168.1.10:5072>\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: 85\r\n\r\n" +
		"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	tests := []struct {
		name  string
		route string
		fix   Fix
	}{
		{"own route removed", "Route: <sip:203.0.113.3;lr>\r\n", Fix{Via: true, ForceRport: true, Contact: ContactAlias, SDP: true, RecordRoute: rr, RemoveRoute: self, AddVia: via}},
		{"own route of a list", "Route: <sip:203.0.113.3:5060;lr>, <sip:203.0.113.2;lr>\r\n", Fix{Via: true, RemoveRoute: self, AddVia: via}},
		{"other route kept", "Route: <sip:203.0.113.2;lr>\r\n", Fix{Via: true, Contact: ContactRewrite, RemoveRoute: self, AddVia: via}},
		{"no route", "", Fix{Via: true, ForceRport: true, SDP: true, RemoveRoute: self, AddVia: via}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m Message
			require.NoError(t, m.Parse([]byte(fmt.Sprintf(invite, tt.route))))
			want := threePass(t, &m, src, self, tt.fix)
			got, err := AppendFix([]byte("pre"), &m, src, &tt.fix)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got[3:]), "one pass gives what three gave")
			var out Message
			require.NoError(t, out.Parse(got[3:]))
			top, ok := out.TopVia()
			require.True(t, ok)
			require.Equal(t, string(via), string(top.In(out.Bytes())))
		})
	}
}

func TestFixForwardToUA(t *testing.T) {
	t.Parallel()
	self := netip.MustParseAddrPort("203.0.113.3:5060")
	in := "INVITE sip:alice@192.168.1.10:5072;alias=198.51.100.7~40000~1;ob SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bK-k\r\nRoute: <sip:203.0.113.3;lr;nat=yes>\r\n" +
		"To: <sip:alice@example.com>\r\nl: 0\r\n\r\n"
	var m Message
	require.NoError(t, m.Parse([]byte(in)))
	a, found, err := m.RURIAlias(nil)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, netip.MustParseAddrPort("198.51.100.7:40000"), a.Addr)
	out, err := AppendFix(nil, &m, netip.AddrPort{}, &Fix{RemoveRoute: self, RemoveRURIAlias: true, AddVia: []byte("SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp2")})
	require.NoError(t, err)
	require.Equal(t, "INVITE sip:alice@192.168.1.10:5072;ob SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp2\r\nVia: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bK-k\r\n"+
		"To: <sip:alice@example.com>\r\nl: 0\r\n\r\n", string(out))

	// HandleRURIAlias is RURIAlias and RemoveRURIAlias.
	h, ha, hfound, err := HandleRURIAlias(nil, &m, nil)
	require.NoError(t, err)
	require.True(t, hfound)
	require.Equal(t, a, ha)
	require.Equal(t, strings.Replace(in, ";alias=198.51.100.7~40000~1", "", 1), string(h))

	// An alias to a private address is refused by the default policy.
	require.NoError(t, m.Parse([]byte(strings.Replace(in, "198.51.100.7", "192.168.1.10", 1))))
	_, found, err = m.RURIAlias(nil)
	require.ErrorIs(t, err, ErrForbiddenDestination)
	require.False(t, found)
	_, _, err = (&Message{}).RURIAlias(nil)
	require.ErrorIs(t, err, ErrNotRequest)
}

func TestFixRemoveViaAndResponseHop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, vias string
		hop        string // "" for an error
		err        error
	}{
		{"received and rport", "Via: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp\r\nVia: SIP/2.0/UDP 192.168.1.10:5072;branch=z9hG4bK-1;received=198.51.100.7;rport=40000\r\n", "198.51.100.7:40000", nil},
		{"one header, two values", "Via: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp, SIP/2.0/UDP 198.51.100.9;branch=z9hG4bK-1\r\n", "198.51.100.9:5060", nil},
		{"IPv6 sent-by", "Via: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp\r\nv: SIP/2.0/UDP [2001:db8::7]:5070;branch=z9hG4bK-1;rport\r\n", "[2001:db8::7]:5070", nil},
		{"no second Via", "Via: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp\r\n", "", ErrNoHeader},
		{"host name", "Via: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp\r\nVia: SIP/2.0/UDP ua.example.com;branch=z9hG4bK-1\r\n", "", ErrBadAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := "SIP/2.0 200 OK\r\n" + tt.vias + "To: <sip:a@b>;tag=2\r\nl: 0\r\n\r\n"
			var m Message
			require.NoError(t, m.Parse([]byte(in)))
			hop, err := m.ResponseHop()
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, netip.MustParseAddrPort(tt.hop), hop)
			out, err := AppendFix(nil, &m, netip.AddrPort{}, &Fix{RemoveVia: true})
			require.NoError(t, err)
			want, _, err := AppendRemoveTopValue(nil, &m, HdrVia)
			require.NoError(t, err)
			require.Equal(t, string(want), string(out))
		})
	}
	var req Message
	require.NoError(t, req.Parse([]byte("OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n")))
	_, err := req.ResponseHop()
	require.ErrorIs(t, err, ErrNotResponse)
}

func TestTag(t *testing.T) {
	t.Parallel()
	var m Message
	require.NoError(t, m.Parse([]byte("INVITE sip:a SIP/2.0\r\nf: <sip:x@y>;tag=abc\r\nTo: <sip:a@b>\r\nl: 0\r\n\r\n")))
	tag, ok := m.Tag(HdrFrom)
	require.True(t, ok)
	require.Equal(t, "abc", string(tag))
	_, ok = m.Tag(HdrTo)
	require.False(t, ok, "no To tag: outside a dialog")
	_, ok = m.Tag(HdrCallID)
	require.False(t, ok)
}

func TestFixForwardAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	msg, err := os.ReadFile("testdata/bench/invite.sip")
	require.NoError(t, err)
	var m Message
	require.NoError(t, m.Parse(msg))
	src := netip.MustParseAddrPort("198.51.100.7:40000")
	f := forwardFix()
	dst := make([]byte, 0, 4096)
	n := testing.AllocsPerRun(50, func() {
		if _, err := AppendFix(dst[:0], &m, src, &f); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, n)
}

// forwardFix is what an edge proxy does to an INVITE from a NATed UA.
func forwardFix() Fix {
	return Fix{Via: true, ForceRport: true, Contact: ContactAlias, SDP: true,
		RecordRoute: []byte("<sip:203.0.113.3:5060;lr;nat=yes>"), RemoveRoute: netip.MustParseAddrPort("203.0.113.3:5060"),
		AddVia: []byte("SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp0123456789abcdef")}
}

// BenchmarkForward compares an edge proxy's forwarding of the 889-byte
// INVITE in one pass (AppendFix with the forwarding edits) with the three
// passes it took before (AppendFix, parse, remove Route, parse, insert Via).
func BenchmarkForward(b *testing.B) {
	msg, err := os.ReadFile("testdata/bench/invite.sip")
	require.NoError(b, err)
	src := netip.MustParseAddrPort("198.51.100.7:40000")
	self := netip.MustParseAddrPort("203.0.113.3:5060")
	f := forwardFix()
	b.Run("one-pass", func(b *testing.B) {
		var m Message
		dst := make([]byte, 0, 4096)
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := m.Parse(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := AppendFix(dst[:0], &m, src, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("three-pass", func(b *testing.B) {
		var m Message
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := m.Parse(msg); err != nil {
				b.Fatal(err)
			}
			_ = threePass(b, &m, src, self, f)
		}
	})
}

func TestFixInsert(t *testing.T) {
	t.Parallel()
	in := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp\r\nVia: SIP/2.0/UDP 192.168.1.10;branch=z9hG4bK1\r\n" +
		"Require: outbound\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n"
	var m Message
	require.NoError(t, m.Parse([]byte(in)))
	out, err := AppendFix(nil, &m, netip.AddrPort{}, &Fix{RemoveVia: true, Insert: HeaderValue{Kind: HdrFlowTimer, Value: []byte("25")}})
	require.NoError(t, err)
	require.Equal(t, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.168.1.10;branch=z9hG4bK1\r\nFlow-Timer: 25\r\n"+
		"Require: outbound\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n", string(out))
	_, err = AppendFix(nil, &m, netip.AddrPort{}, &Fix{Insert: HeaderValue{Kind: HdrOther, Value: []byte("x")}})
	require.ErrorIs(t, err, ErrMalformed)
	_, err = AppendFix(nil, &m, netip.AddrPort{}, &Fix{Via: true})
	require.ErrorIs(t, err, ErrBadAddress, "a fix that writes the source needs one")
}

// TestRemoveDoubleRoute: a dual-stack proxy's two Route values (the double
// Record-Route between an IPv4 and an IPv6 leg) go in one pass, in either
// order, on one line or two; a lone own value, or another proxy's value
// between them, removes only the top.
func TestRemoveDoubleRoute(t *testing.T) {
	t.Parallel()
	v4, v6 := netip.MustParseAddrPort("203.0.113.3:5060"), netip.MustParseAddrPort("[2001:db8:ff::3]:5060")
	const req = "BYE sip:bob@198.51.100.2:5099 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.2:5099;branch=z9hG4bK-1\r\n%s" +
		"From: <sip:bob@example.com>;tag=1\r\nTo: <sip:alice@example.com>;tag=2\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
	for _, tc := range []struct {
		name, route, want string
		also              netip.AddrPort
	}{
		{"one line", "Route: <sip:203.0.113.3;lr>, <sip:[2001:db8:ff::3];lr>\r\n", "", v6},
		{"other order", "Route: <sip:[2001:db8:ff::3]:5060;lr>, <sip:203.0.113.3;lr>, <sip:203.0.113.2;lr>\r\n", "Route: <sip:203.0.113.2;lr>\r\n", v6},
		{"two lines", "Route: <sip:203.0.113.3;lr>\r\nRoute: <sip:[2001:db8:ff::3];lr>, <sip:203.0.113.2;lr>\r\n", "Route: <sip:203.0.113.2;lr>\r\n", v6},
		{"lone own", "Route: <sip:[2001:db8:ff::3];lr>, <sip:203.0.113.2;lr>\r\n", "Route: <sip:203.0.113.2;lr>\r\n", v6},
		{"not adjacent", "Route: <sip:203.0.113.3;lr>, <sip:203.0.113.2;lr>, <sip:[2001:db8:ff::3];lr>\r\n", "Route: <sip:203.0.113.2;lr>, <sip:[2001:db8:ff::3];lr>\r\n", v6},
		{"without also", "Route: <sip:203.0.113.3;lr>, <sip:[2001:db8:ff::3];lr>\r\n", "Route: <sip:[2001:db8:ff::3];lr>\r\n", netip.AddrPort{}},
		{"not ours", "Route: <sip:203.0.113.2;lr>, <sip:203.0.113.3;lr>\r\n", "Route: <sip:203.0.113.2;lr>, <sip:203.0.113.3;lr>\r\n", v6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var m Message
			require.NoError(t, m.Parse([]byte(fmt.Sprintf(req, tc.route))))
			f := Fix{RemoveRoute: v4, RemoveRouteAlso: tc.also}
			got, err := AppendFix(nil, &m, netip.AddrPort{}, &f)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf(req, tc.want), string(got))
		})
	}
}
