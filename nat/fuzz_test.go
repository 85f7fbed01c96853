package nat

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun/v2"

	"github.com/sipnat/sipnat/clock"
)

// FuzzDecodeAnswer feeds arbitrary bytes to the client's response decoder.
// It must never panic; a decoded mapped address must re-encode to the bytes
// it came from. Seeds: testdata/fuzz/FuzzDecodeAnswer and the ones below.
func FuzzDecodeAnswer(f *testing.F) {
	var req, out stun.Message
	buildRequest(&req, [12]byte{9, 8, 7}, BindingOptions{})
	s := &Server{full: true, limiter: limiter{rate: 1e9, burst: 1e9, max: 10, m: map[netip.Addr]*bucket{}}}
	s.addrs = [4]netip.AddrPort{
		netip.MustParseAddrPort("203.0.113.2:3478"), netip.MustParseAddrPort("203.0.113.2:3479"),
		netip.MustParseAddrPort("203.0.113.3:3478"), netip.MustParseAddrPort("203.0.113.3:3479"),
	}
	r, _ := parseRequest(req.Raw)
	s.buildSuccess(&out, &r, netip.MustParseAddrPort("192.0.2.1:5060"), s.addrs[0])
	f.Add(append([]byte(nil), out.Raw...))
	s.buildError(&out, &r, 420, "Unknown Attribute", 3)
	f.Add(append([]byte(nil), out.Raw...))
	r.classic = true
	s.buildSuccess(&out, &r, netip.MustParseAddrPort("[2001:db8::1]:5060"), s.addrs[3])
	f.Add(append([]byte(nil), out.Raw...))
	f.Fuzz(func(t *testing.T, b []byte) {
		pres, perr := ParseResponse(b)
		var m stun.Message
		res, serverErr, err := decodeAnswer(&m, b)
		if !IsSTUN(b) {
			if !errors.Is(perr, ErrNotSTUN) {
				t.Fatalf("ParseResponse of non-STUN: %v", perr)
			}
		} else if (err == nil) != (perr == nil || serverErr != nil) {
			t.Fatalf("ParseResponse and decodeAnswer disagree: %v / %v, %v", perr, err, serverErr)
		}
		if err != nil || serverErr != nil {
			return
		}
		if IsSTUN(b) && pres != res {
			t.Fatalf("ParseResponse %+v, decodeAnswer %+v", pres, res)
		}
		if !res.Mapped.IsValid() {
			t.Fatalf("success without mapped address: %x", b)
		}
		typ := stun.AttrMappedAddress
		if res.XOR {
			typ = stun.AttrXORMappedAddress
		}
		v, gerr := m.Get(typ)
		if gerr != nil {
			t.Fatalf("mapped attribute vanished: %v", gerr)
		}
		enc := appendAddrValue(nil, res.Mapped, res.XOR, m.TransactionID[:])
		if !bytes.Equal(enc[1:], v[1:]) {
			t.Fatalf("mapped %v re-encodes to %x, was %x", res.Mapped, enc, v)
		}
	})
}

// FuzzServerRequest feeds arbitrary bytes to the server's request handling.
// It must never panic, answer only to the source address, and never answer
// with more than a success response needs.
func FuzzServerRequest(f *testing.F) {
	for _, o := range []BindingOptions{{}, {ChangeIP: true}, {ChangePort: true, ResponsePort: 4000}, {NoFingerprint: true}} {
		var m stun.Message
		buildRequest(&m, [12]byte{1}, o)
		f.Add(append([]byte(nil), m.Raw...))
	}
	f.Add(classicRequest(6))
	s := &Server{full: true, limiter: limiter{rate: 1e9, burst: 1e9, max: 10, m: map[netip.Addr]*bucket{}}}
	s.clock = clock.System()
	for i := range s.conns {
		s.conns[i] = &echoConn{}
	}
	s.addrs = [4]netip.AddrPort{
		netip.MustParseAddrPort("203.0.113.2:3478"), netip.MustParseAddrPort("203.0.113.2:3479"),
		netip.MustParseAddrPort("203.0.113.3:3478"), netip.MustParseAddrPort("203.0.113.3:3479"),
	}
	from := netip.MustParseAddrPort("192.0.2.1:5060")
	f.Fuzz(func(t *testing.T, b []byte) {
		var out stun.Message
		dst, sock, ok := s.respond(0, b, from, &out)
		if !ok {
			return
		}
		if dst.Addr() != from.Addr() {
			t.Fatalf("answer to %v for a request from %v", dst, from)
		}
		if sock < 0 || sock > 3 {
			t.Fatalf("socket %d", sock)
		}
		// Largest answer: a success with three addresses and FINGERPRINT,
		// or PADDING up to the request's own size.
		if len(out.Raw) > max(20+3*12+8, len(b)) {
			t.Fatalf("answer of %d bytes to %d bytes", len(out.Raw), len(b))
		}
		if !IsSTUN(out.Raw) && b[4] == 0x21 && b[5] == 0x12 && b[6] == 0xA4 && b[7] == 0x42 {
			t.Fatalf("answer is not STUN: %x", out.Raw)
		}
	})
}
