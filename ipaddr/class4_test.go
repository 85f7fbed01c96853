package ipaddr

import (
	"net/netip"
	"testing"
)

// TestClassify4MatchesTable holds the IPv4 fast path to the range table on
// every first and second octet, with third and fourth octets at the range
// edges.
func TestClassify4MatchesTable(t *testing.T) {
	t.Parallel()
	for o0 := 0; o0 < 256; o0++ {
		for o1 := 0; o1 < 256; o1++ {
			for _, o2 := range []byte{0, 1, 2, 51, 100, 113, 255} {
				for _, o3 := range []byte{0, 1, 255} {
					b := [4]byte{byte(o0), byte(o1), o2, o3}
					a := netip.AddrFrom4(b)
					if got, want := classify4(b), classifyTable(a); got != want {
						t.Fatalf("%v: classify4 %v, table %v", a, got, want)
					}
				}
			}
		}
	}
}
