package sipmsg

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/sipnat/sipnat/sdp"
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
	rfc, _ := filepath.Glob("testdata/rfc4475/*.dat")
	for _, name := range rfc {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
}

// FuzzParse: the scanner never panics, reads header lines with fastLines
// exactly as with the Go loop alone, and what it accepts it accepts again
// on its own Len prefix, with every header value inside the message.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		sameScan(t, b)
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
		if m.Len()+m.Trailing() != len(b) || len(m.Bytes()) != m.Len() {
			t.Fatalf("Len %d + Trailing %d != %d", m.Len(), m.Trailing(), len(b))
		}
		var m2 Message
		if err := m2.Parse(b[:m.Len()]); err != nil {
			t.Fatalf("prefix does not scan: %v", err)
		}
		if err := m.Check(); err != nil && StatusFor(err) == 0 {
			t.Fatalf("Check error without a status: %v", err)
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
		{Via: true, Contact: ContactAlias, AliasKey: []byte("fuzz key")},
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
				if m2.Trailing() != 0 {
					t.Fatalf("fix %d: %d octets after the body forwarded", i, m2.Trailing())
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
		if out, res, err := AppendRewriteSDP(nil, &m, &sdp.Options{Public: srcs[0].Addr(), Origin: true}); err == nil {
			var m2 Message
			if err := m2.Parse(out); err != nil {
				t.Fatalf("SDP rewrite output does not scan: %v\n%q\n%q", err, b, out)
			}
			if res.Changed() && m2.Body() != nil && len(m2.Body()) != len(out)-m2.body.Start {
				t.Fatalf("SDP rewrite: Content-Length does not count the new body\n%q", out)
			}
			again, res2, err := AppendRewriteSDP(nil, &m2, &sdp.Options{Public: srcs[0].Addr(), Origin: true})
			if err != nil || res2.Changed() || !bytes.Equal(again, out) {
				t.Fatalf("SDP rewrite not idempotent: %v\n%q\n%q", err, out, again)
			}
		}
		if m.IsRequest() {
			all := []netip.Prefix{netip.MustParsePrefix("::/0"), netip.MustParsePrefix("0.0.0.0/0")}
			for _, p := range []*DestPolicy{{Allow: all}, {Allow: all, AliasKey: []byte("fuzz key")}} {
				out, _, found, err := HandleRURIAlias(nil, &m, p)
				if err == nil && found {
					var m2 Message
					if err := m2.Parse(out); err != nil {
						t.Fatalf("alias restore output does not scan: %v", err)
					}
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
		// no smuggling on streams: the message Parse reads from a frame is
		// the whole frame, so framing and parsing agree where it ends
		var m Message
		if fr.Kind == FrameMessage && m.Parse(b[:fr.Len]) == nil && (m.Len() != fr.Len || m.Trailing() != 0) {
			t.Fatalf("frame of %d bytes parses as a message of %d (+%d)", fr.Len, m.Len(), m.Trailing())
		}
	})
}

// FuzzStreamReader: the stream reader never panics, never holds more than
// Max bytes, and cuts a stream delivered in chunks of any size into the
// same frames as one read of the whole stream does (a server's reader,
// which holds a CRLF until it knows whether a ping was split).
func FuzzStreamReader(f *testing.F) {
	for _, s := range streamSeeds() {
		f.Add(s, uint8(7))
	}
	f.Add([]byte(streamMsg+"\r\n\r\n"+streamMsg), uint8(1))
	f.Add([]byte("\r\n\r\n\r\n\r"), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		const max = 2048
		whole := NewStreamReader(bytes.NewReader(b), StreamConfig{Max: max, Pings: true})
		want, werr := readAll(whole)
		c := int(chunk%64) + 1
		cut := NewStreamReader(&chunkReader{b: b, n: c}, StreamConfig{Max: max, Pings: true})
		got, gerr := readAll(cut)
		if len(cut.buf) > max || len(whole.buf) > max {
			t.Fatalf("buffer grew to %d/%d over %d", len(cut.buf), len(whole.buf), max)
		}
		if werr == nil || gerr == nil {
			t.Fatal("reader ended without an error")
		}
		if len(got) != len(want) {
			t.Fatalf("chunks of %d: %d frames (%v), whole: %d (%v)", c, len(got), gerr, len(want), werr)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("frame %d differs: %q vs %q", i, got[i].b, want[i].b)
			}
		}
	})
}

func streamSeeds() [][]byte {
	var out [][]byte
	files, _ := filepath.Glob("testdata/lab/*.sip")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			out = append(out, b)
		}
	}
	return append(out, []byte(inviteV6), []byte("\r\n\r\n"))
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// FuzzForward: the forwarding edits of a dual-stack proxy (its own Route
// values at either address, its Via added or removed) never panic, and
// what they write scans, with no more Route values than went in.
func FuzzForward(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("BYE sip:b@198.51.100.2 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.2;branch=z9hG4bK1\r\n" +
		"Route: <sip:203.0.113.3;lr>, <sip:[2001:db8:ff::3];lr>\r\nRoute: <sip:203.0.113.2;lr>\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"))
	v4, v6 := netip.MustParseAddrPort("203.0.113.3:5060"), netip.MustParseAddrPort("[2001:db8:ff::3]:5060")
	fixes := []Fix{
		{RemoveRoute: v4, RemoveRouteAlso: v6, AddVia: []byte("SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp1")},
		{RemoveRoute: v6, RemoveRouteAlso: v4, RemoveRURIAlias: true},
		{RemoveVia: true},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.Parse(b); err != nil {
			return
		}
		routes := 0
		for it := m.Values(HdrRoute); it.Next(); {
			routes++
		}
		for i := range fixes {
			out, err := AppendFix(nil, &m, netip.AddrPort{}, &fixes[i])
			if err != nil {
				continue
			}
			var m2 Message
			if err := m2.Parse(out); err != nil {
				t.Fatalf("fix %d: output does not scan: %v\n%q\n%q", i, err, b, out)
			}
			n := 0
			for it := m2.Values(HdrRoute); it.Next(); {
				n++
			}
			if n > routes || routes-n > 2 {
				t.Fatalf("fix %d: %d Route values became %d\n%q\n%q", i, routes, n, b, out)
			}
		}
	})
}
