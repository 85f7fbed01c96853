package ipaddr

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompareLayers(t *testing.T) {
	t.Parallel()
	a := func(s string) netip.Addr {
		if s == "" {
			return netip.Addr{}
		}
		return netip.MustParseAddr(s)
	}
	for _, tc := range []struct {
		gw, pub       string
		cgnat, double bool
	}{
		{"", "", false, false},
		{"", "203.0.113.1", false, false}, // nothing to compare: not seen, not "no"
		{"", "100.64.0.9", true, true},    // a STUN server inside the carrier
		{"203.0.113.1", "203.0.113.1", false, false},
		{"100.64.0.2", "203.0.113.1", true, true},
		{"100.64.0.2", "", true, true},
		{"10.0.0.2", "203.0.113.1", false, true},
		{"198.51.100.1", "203.0.113.1", false, true}, // public, but not what the internet sees
		{"::ffff:100.64.0.2", "203.0.113.1", true, true},
	} {
		l := CompareLayers(a(tc.gw), a(tc.pub))
		require.Equal(t, tc.cgnat, l.CGNAT, "%s/%s", tc.gw, tc.pub)
		require.Equal(t, tc.double, l.DoubleNAT, "%s/%s", tc.gw, tc.pub)
		require.Equal(t, l.DoubleNAT, l.Reason != "", "a reason exactly when something was seen: %q", l.Reason)
	}
}
