package ipaddr

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSynthesizeNAT64RFC6052: the table of RFC 6052 section 2.4, 192.0.2.33
// under every prefix length.
func TestSynthesizeNAT64RFC6052(t *testing.T) {
	t.Parallel()
	v4 := netip.MustParseAddr("192.0.2.33")
	for _, tc := range []struct{ prefix, want string }{
		{"2001:db8::/32", "2001:db8:c000:221::"},
		{"2001:db8:100::/40", "2001:db8:1c0:2:21::"},
		{"2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
		{"2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
		{"2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"},
		{"2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"},
		{"64:ff9b::/96", "64:ff9b::192.0.2.33"},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			t.Parallel()
			p := netip.MustParsePrefix(tc.prefix)
			got, err := SynthesizeNAT64(p, v4)
			require.NoError(t, err)
			require.Equal(t, netip.MustParseAddr(tc.want), got)
			back, ok := ExtractNAT64(p, got)
			require.True(t, ok)
			require.Equal(t, v4, back)
			mapped, err := SynthesizeNAT64(p, netip.AddrFrom16(v4.As16()))
			require.NoError(t, err)
			require.Equal(t, got, mapped, "an IPv4-mapped address counts as IPv4")
		})
	}
}

func TestNAT64Errors(t *testing.T) {
	t.Parallel()
	v4 := netip.MustParseAddr("192.0.2.33")
	for _, p := range []string{"10.0.0.0/8", "2001:db8::/33", "2001:db8::/128", "::ffff:0.0.0.0/96"} {
		_, err := SynthesizeNAT64(netip.MustParsePrefix(p), v4)
		require.ErrorIs(t, err, ErrNAT64Prefix, p)
		_, ok := ExtractNAT64(netip.MustParsePrefix(p), netip.MustParseAddr("2001:db8::1"))
		require.False(t, ok, p)
	}
	_, err := SynthesizeNAT64(WellKnownNAT64, netip.MustParseAddr("2001:db8::1"))
	require.Error(t, err)
	_, err = SynthesizeNAT64(netip.Prefix{}, v4)
	require.ErrorIs(t, err, ErrNAT64Prefix)
	_, ok := ExtractNAT64(WellKnownNAT64, netip.MustParseAddr("2001:db8::1"))
	require.False(t, ok, "outside the prefix")
	_, ok = ExtractNAT64(netip.MustParsePrefix("2001:db8:122:344::/64"), netip.MustParseAddr("2001:db8:122:344:1c0:2:2100:0"))
	require.False(t, ok, "u octet not zero")
}

// TestNAT64PrefixesFrom: RFC 7050 heuristics over what a DNS64 answers for
// ipv4only.arpa.
func TestNAT64PrefixesFrom(t *testing.T) {
	t.Parallel()
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		aaaa []netip.Addr
		want []string
	}{
		{"well-known", addrs("64:ff9b::c000:aa", "64:ff9b::c000:ab"), []string{"64:ff9b::/96"}},
		{"network-specific /96", addrs("2001:db8:64::c000:aa"), []string{"2001:db8:64::/96"}},
		{"/64", addrs("2001:db8:122:344:c0:0:aa00:0"), []string{"2001:db8:122:344::/64"}},
		{"/32", addrs("2001:db8:c000:aa::", "2001:db8:c000:ab::"), []string{"2001:db8::/32"}},
		{"/48 and /96", addrs("2001:db8:122:c000:0:aa00::", "64:ff9b::c000:ab"), []string{"2001:db8:122::/48", "64:ff9b::/96"}},
		{"a real AAAA: no NAT64", addrs("2001:db8::1"), nil},
		{"IPv4 answers skipped", addrs("192.0.0.170", "::ffff:192.0.0.170"), nil},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, p := range NAT64PrefixesFrom(tc.aaaa) {
				got = append(got, p.String())
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func FuzzNAT64(f *testing.F) {
	f.Add([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0x64, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0xaa}, uint8(96), []byte{192, 0, 2, 33})
	f.Add([]byte{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(32), []byte{10, 0, 0, 1})
	f.Fuzz(func(t *testing.T, a []byte, bits uint8, v4 []byte) {
		if len(a) != 16 || len(v4) != 4 {
			return
		}
		addr := netip.AddrFrom16([16]byte(a))
		p := netip.PrefixFrom(addr, int(bits))
		if s, err := SynthesizeNAT64(p, netip.AddrFrom4([4]byte(v4))); err == nil {
			back, ok := ExtractNAT64(p, s)
			if !ok || back != netip.AddrFrom4([4]byte(v4)) {
				t.Fatalf("round trip %v %v: %v %v", p, v4, back, ok)
			}
		}
		_, _ = ExtractNAT64(p, addr)
		for _, q := range NAT64PrefixesFrom([]netip.Addr{addr}) {
			if _, ok := ExtractNAT64(q, addr); !ok {
				t.Fatalf("found prefix %v does not hold %v", q, addr)
			}
		}
	})
}
