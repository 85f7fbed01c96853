package sdp

import "testing"

// FuzzTailFields checks the fast from-the-end field reader of o= and c=
// against splitFields, the reference reader (pion/sdp's field rules).
func FuzzTailFields(f *testing.F) {
	for _, s := range []string{"IN IP4 1.2.3.4", " IN IP4 x", "a  b\tc", "u 1 2 IN IP4 h ", "x", "", "\t\t", "a b c d"} {
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
	})
}
