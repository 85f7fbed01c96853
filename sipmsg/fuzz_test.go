package sipmsg

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/lab/*.sip")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(inviteV6))
	f.Add(req("SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport", "<sip:a@192.168.1.10:5070>, sip:b@10.0.0.1;expires=1", sdpPriv))
	f.Add([]byte("REGISTER sip:x SIP/2.0\r\nv: SIP/2.0/UDP [fd00::1];rport\r\nm: *\r\nl: 0\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
}

// FuzzParse: the scanner never panics, and what it accepts it accepts
// again on its own Len prefix, with every header value inside the message.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.Parse(b); err != nil {
			return
		}
		for i := 0; i < m.NumHeaders(); i++ {
			s := m.HeaderValueSpan(i)
			if s.Start > s.End || s.End > len(b) {
				t.Fatalf("header %d span %v out of %d", i, s, len(b))
			}
		}
		var m2 Message
		if err := m2.Parse(b[:m.Len()]); err != nil {
			t.Fatalf("prefix does not scan: %v", err)
		}
		for _, k := range []HeaderKind{HdrVia, HdrContact, HdrRecordRoute, HdrRoute} {
			it := m.Values(k)
			for it.Next() {
				_, _ = ParseVia(b, it.Span())
				na, err := ParseNameAddr(b, it.Span())
				if err == nil {
					_, _ = ParseURI(b, na.URI)
				}
			}
		}
		_, _ = m.NATTest(netip.MustParseAddrPort("203.0.113.1:5060"), AllNATTests, SDPNATCheck)
		_, _ = m.PublicAddr()
		_, _ = NextFrame(b, 0)
	})
}

// FuzzRewrite: every rewrite of a message the scanner accepts yields a
// message the scanner accepts, is idempotent, and changes nothing but the
// rewritten spans (same number of header lines, plus inserted ones).
func FuzzRewrite(f *testing.F) {
	addSeeds(f)
	fixes := []Fix{
		{Via: true},
		{Via: true, ForceRport: true, Contact: ContactRewrite},
		{Contact: ContactAlias, Transport: TCP},
		{Via: true, Contact: ContactAlias, RecordRoute: []byte("<sip:203.0.113.2;lr>"), Path: []byte("<sip:tok@203.0.113.2;lr;ob>")},
		{Via: true, Contact: ContactRewrite, SDP: true},
	}
	srcs := []netip.AddrPort{netip.MustParseAddrPort("203.0.113.1:5070"), netip.MustParseAddrPort("[2001:db8::1]:40000")}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.Parse(b); err != nil {
			return
		}
		for i := range fixes {
			fx := &fixes[i]
			for _, src := range srcs {
				out, err := AppendFix(nil, &m, src, fx)
				if err != nil {
					continue
				}
				var m2 Message
				if err := m2.Parse(out); err != nil {
					t.Fatalf("fix %d: output does not scan: %v\n%q\n%q", i, err, b, out)
				}
				out2, err := AppendFix(nil, &m2, src, fx)
				if err != nil {
					t.Fatalf("fix %d: second pass: %v\n%q", i, err, out)
				}
				if !bytes.Equal(out, out2) {
					t.Fatalf("fix %d: not idempotent\n%q\n%q", i, out, out2)
				}
				if m2.NumHeaders() < m.NumHeaders() {
					t.Fatalf("fix %d: lost headers", i)
				}
			}
		}
		if m.IsRequest() {
			out, _, found, err := HandleRURIAlias(nil, &m)
			if err == nil && found {
				var m2 Message
				if err := m2.Parse(out); err != nil {
					t.Fatalf("alias restore output does not scan: %v", err)
				}
			}
		}
	})
}

// FuzzFrame: framing never panics and a reported message scans.
func FuzzFrame(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := NextFrame(b, 4096)
		if err != nil {
			return
		}
		if fr.Len > len(b) || (fr.Kind == FrameNone && fr.Need <= 0) {
			t.Fatalf("bad frame %+v for %d bytes", fr, len(b))
		}
	})
}
