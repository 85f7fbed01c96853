package sdp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseIP(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"192.168.1.10", "0.0.0.0", "255.255.255.255", "10.0.0.1", "1.2.3.4",
		"::", "::1", "fe80::1", "2001:db8::5", "fd00:1::10", "1::", "1:2:3:4:5:6:7:8",
		"::ffff:192.168.1.10", "64:ff9b::203.0.113.1", "1:2:3:4:5:6:1.2.3.4", "FD00::ABCD",
		"1::2:3:4:5:6:7",
		// invalid
		"", ".", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "a.b.c.d",
		":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", ":1::", "1::2:",
		"12345::", "fe80::1%eth0", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "host.example.com",
		"1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7:8",
	} {
		want, werr := netip.ParseAddr(s)
		got, ok := parseIP([]byte(s))
		if werr != nil || want.Zone() != "" {
			require.False(t, ok, "%q should not parse", s)
			continue
		}
		require.True(t, ok, "%q should parse", s)
		require.Equal(t, want, got, s)
	}
}

func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"192.168.1.10", "::ffff:1.2.3.4", "2001:db8::5", "1::", "::", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := netip.ParseAddr(s)
		got, ok := parseIP([]byte(s))
		if werr != nil || want.Zone() != "" {
			if ok {
				t.Fatalf("%q: parsed as %v, netip says %v", s, got, werr)
			}
			return
		}
		// parseIP only answers for inputs with '.' or ':'; netip agrees
		// every valid address has one.
		if !ok || got != want {
			t.Fatalf("%q: got %v %v, want %v", s, got, ok, want)
		}
	})
}

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
