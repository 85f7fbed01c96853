package ipaddr

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
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
		"1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7:8", "1..2.3", "::g", "1:2:3:4:5:6:7:8::", "::2:3:4:5:6:7:8", "1:",
		"[::1]", "[::1", "64:ff9b::203.0.113.5",
	} {
		want, werr := netip.ParseAddr(s)
		got, ok := Parse([]byte(s))
		if werr != nil || want.Zone() != "" {
			require.False(t, ok, "%q should not parse", s)
			continue
		}
		require.True(t, ok, "%q should parse", s)
		require.Equal(t, want, got, s)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"192.168.1.10", "::ffff:1.2.3.4", "2001:db8::5", "1::", "::", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := netip.ParseAddr(s)
		got, ok := Parse([]byte(s))
		if werr != nil || want.Zone() != "" {
			if ok {
				t.Fatalf("%q: parsed as %v, netip says %v", s, got, werr)
			}
			return
		}
		// Parse only answers for inputs with '.' or ':'; netip agrees
		// every valid address has one.
		if !ok || got != want {
			t.Fatalf("%q: got %v %v, want %v", s, got, ok, want)
		}
		if a, n := LeadingIPv4([]byte(s)); want.Is4() && (a != want || n != len(s)) {
			t.Fatalf("%q: LeadingIPv4 %v %d", s, a, n)
		}
	})
}

// FuzzLeadingIPv4: the address LeadingIPv4 finds is what netip parses from
// its text, and it finds one wherever netip parses some prefix of b as one
// whose next byte is no digit.
func FuzzLeadingIPv4(f *testing.F) {
	for _, s := range []string{"192.168.1.10:5060", "1.2.3.4;x", "1.2.3.45678", "01.2.3.4", "1.2.3.4.5", "255.255.255.255>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, n := LeadingIPv4([]byte(s))
		if n > 0 {
			if want, err := netip.ParseAddr(s[:n]); err != nil || want != a || !want.Is4() {
				t.Fatalf("%q: %v %d, netip %v %v", s, a, n, want, err)
			}
			return
		}
		for k := 7; k <= len(s) && k <= 15; k++ {
			if want, err := netip.ParseAddr(s[:k]); err == nil && want.Is4() && (k == len(s) || s[k]-'0' > 9) {
				t.Fatalf("%q: none found, netip reads %v from %q", s, want, s[:k])
			}
		}
	})
}

func TestParseHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" for no address
	}{
		{"192.0.2.1", "192.0.2.1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"2001:db8::1", "2001:db8::1"}, // received= carries IPv6 without brackets
		{"[::ffff:192.0.2.1]", "::ffff:192.0.2.1"},
		{"[192.0.2.1]", ""}, // brackets hold IPv6 only (RFC 3261 IPv6reference)
		{"[2001:db8::1", ""},
		{"2001:db8::1]", ""},
		{"[]", ""},
		{"atlanta.example.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseHost([]byte(tt.in))
			if tt.want == "" {
				require.False(t, ok)
				return
			}
			require.True(t, ok)
			require.Equal(t, netip.MustParseAddr(tt.want), got)
		})
	}
}

func TestParseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	in := [][]byte{[]byte("192.168.1.10"), []byte("[2001:db8::1]"), []byte("host.example.com")}
	n := testing.AllocsPerRun(100, func() {
		for _, b := range in {
			_, _ = ParseHost(b)
		}
	})
	require.Zero(t, n)
}

func BenchmarkParse(b *testing.B) {
	for _, s := range []string{"192.168.1.10", "2001:db8::5", "::ffff:203.0.113.1", "pc33.atlanta.example.com"} {
		in := []byte(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_, _ = Parse(in)
			}
		})
		b.Run(s+"/netip", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_, _ = netip.ParseAddr(string(in))
			}
		})
	}
}
