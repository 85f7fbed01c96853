package sipmsg

import (
	"net/netip"
	"os"
	"testing"
)

func benchInvite(b *testing.B) []byte {
	msg, err := os.ReadFile("testdata/bench/invite.sip")
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// BenchmarkPath is a proxy's whole job on the 889-byte INVITE: scan, NAT
// tests (signalling and SDP), Via received/rport and Contact rewrite.
func BenchmarkPath(b *testing.B) {
	msg := benchInvite(b)
	src := netip.MustParseAddrPort("203.0.113.1:40000")
	cases := []struct {
		name string
		fix  Fix
		sdp  SDPCheck
	}{
		{"via+contact", Fix{Via: true, Contact: ContactRewrite}, nil},
		{"via+alias+rr", Fix{Via: true, Contact: ContactAlias, RecordRoute: []byte("<sip:203.0.113.2;lr>")}, nil},
		{"via+contact+sdp", Fix{Via: true, Contact: ContactRewrite, SDP: true}, SDPNATCheck},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var m Message
			dst := make([]byte, 0, 2048)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := m.Parse(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := m.NATTest(src, AllNATTests, c.sdp); err != nil {
					b.Fatal(err)
				}
				var err error
				if dst, err = AppendFix(dst[:0], &m, src, &c.fix); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	msg := benchInvite(b)
	var m Message
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := m.Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNATTest(b *testing.B) {
	msg := benchInvite(b)
	src := netip.MustParseAddrPort("203.0.113.1:40000")
	var m Message
	if err := m.Parse(msg); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := m.NATTest(src, AllNATTests&^(SDPPrivate|SDPDiffers), nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendFix(b *testing.B) {
	msg := benchInvite(b)
	src := netip.MustParseAddrPort("203.0.113.1:40000")
	var m Message
	if err := m.Parse(msg); err != nil {
		b.Fatal(err)
	}
	f := Fix{Via: true, Contact: ContactRewrite}
	dst := make([]byte, 0, 2048)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var err error
		if dst, err = AppendFix(dst[:0], &m, src, &f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNextFrame(b *testing.B) {
	msg := benchInvite(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if f, err := NextFrame(msg, 0); err != nil || f.Len != len(msg) {
			b.Fatal(f, err)
		}
	}
}
