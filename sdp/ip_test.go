package sdp

import "testing"

// splitFields is the reference field reader of the fuzz tests: it splits v into at most len(out) fields separated by runs of
// spaces or tabs, as pion/sdp's lexer does (so a leading separator makes an
// empty first field, as in "o= 0 0 IN IP4 ..."). The last field takes the
// rest of v less trailing blanks. It returns the number of fields.
func splitFields(v []byte, out []span) int {
	n := 0
	for i := 0; n < len(out); {
		s := i
		if n == len(out)-1 {
			e := len(v)
			for e > s && isBlank(v[e-1]) {
				e--
			}
			out[n] = span{s, e}
			return n + 1
		}
		for i < len(v) && !isBlank(v[i]) {
			i++
		}
		out[n] = span{s, i}
		n++
		if i == len(v) {
			break
		}
		for i < len(v) && isBlank(v[i]) {
			i++
		}
		if i == len(v) {
			break
		}
	}
	return n
}

// FuzzTailFields checks the fast from-the-end field reader of o= and c=
// against splitFields, the reference reader (pion/sdp's field rules).
func FuzzTailFields(f *testing.F) {
	for _, s := range []string{"IN IP4 1.2.3.4", "IN IP6 ::1", "IN IP4  1.2.3.4", " IN IP4 x", "a  b\tc", "u 1 2 IN IP4 h ", "x", "", "\t\t", "a b c d"} {
		f.Add(s, uint8(3))
		f.Add(s, uint8(6))
	}
	f.Fuzz(func(t *testing.T, s string, n uint8) {
		if n < 2 || n > 8 {
			return
		}
		v := []byte(s)
		ref := make([]span, n)
		refOK := splitFields(v, ref) == int(n) && !hasBlank(v[ref[n-1].s:ref[n-1].e])
		typ, addr, ok := tailFields(v, int(n))
		if ok != refOK {
			t.Fatalf("%q n=%d: tailFields ok=%v, splitFields ok=%v", s, n, ok, refOK)
		}
		if ok && (typ != ref[n-2] || addr != ref[n-1]) {
			t.Fatalf("%q n=%d: tailFields %v %v, splitFields %v %v", s, n, typ, addr, ref[n-2], ref[n-1])
		}
		// Every hint a body can give (an address token: no blanks) that v
		// ends with, and one it does not end with.
		for k := 0; k <= len(v); k++ {
			h := v[len(v)-k:]
			if k == len(v) {
				h = []byte("192.168.1.10")
			}
			if len(h) == 0 || hasBlank(h) {
				continue
			}
			htyp, haddr, hok := tailFieldsHint(v, int(n), h)
			if hok != ok || htyp != typ || haddr != addr {
				t.Fatalf("%q n=%d hint %q: %v %v %v, without hint %v %v %v", s, n, h, htyp, haddr, hok, typ, addr, ok)
			}
		}
	})
}

// refRTCPValue is parseRTCPValue by the reference reader: one field, or
// four with no blank in the fourth.
func refRTCPValue(v []byte) (rtcpValue, bool) {
	var f [4]span
	n := splitFields(v, f[:])
	if n != 1 && n != 4 {
		return rtcpValue{}, false
	}
	var r rtcpValue
	r.port = f[0]
	var ok bool
	if r.portNum, ok = parsePort(v[f[0].s:f[0].e]); !ok {
		return rtcpValue{}, false
	}
	if n == 4 {
		if hasBlank(v[f[3].s:f[3].e]) {
			return rtcpValue{}, false
		}
		r.hasAddr = true
		r.typ, r.addr = f[2], f[3]
	}
	return r, true
}

// FuzzParseRTCPValue checks the a=rtcp reader, with and without a hint,
// against the reference reader.
func FuzzParseRTCPValue(f *testing.F) {
	for _, s := range []string{"50001 IN IP4 192.168.1.10", "50001", "50001 ", " 50001", "5000x IN IP4 a",
		"123456 IN IP4 a", "1 IN IP4 a b", "1 IN a", "1\tIN\tIP6\t::1 ", "65536", "0 IN IP4 h/2", ""} {
		f.Add(s, "192.168.1.10")
	}
	f.Fuzz(func(t *testing.T, s, hint string) {
		v := []byte(s)
		want, wantOK := refRTCPValue(v)
		for _, h := range [][]byte{nil, []byte(hint)} {
			if hasBlank(h) {
				continue // hints are address tokens: never blank
			}
			got, ok := parseRTCPValue(v, h)
			if ok != wantOK || ok && got != want {
				t.Fatalf("%q hint %q: got %+v %v, reference %+v %v", s, h, got, ok, want, wantOK)
			}
		}
	})
}
