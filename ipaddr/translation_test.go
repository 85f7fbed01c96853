package ipaddr

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTranslationOf(t *testing.T) {
	t.Parallel()
	host := []netip.Addr{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("2001:db8:1::10")}
	for _, c := range []struct {
		seen string
		want Translation
	}{
		{"2001:db8:1::10", NoTranslation},
		{"2001:db8:2::10", NPTv6},        // the lab's NPTv6: prefix swapped, IID kept
		{"2001:db8:2:fffe::10", NPTv6},   // RFC 6296 /48: checksum-neutral word in the subnet ID
		{"2001:db8:2:0:fffe::10", NPTv6}, // a /64: the adjustment in the interface identifier
		{"2001:db8:2:0:1234::10", NAT66}, // an IID word changed without checksum neutrality
		{"2001:db8:ff::1", NAT66},        // the router's own address
		{"2001:db8:2::1:2:3:10", NAT66},  // more than one IID word changed
		{"203.0.113.1", ""},              // not IPv6
		{"::ffff:203.0.113.1", ""},       // IPv4-mapped
	} {
		require.Equal(t, c.want, TranslationOf(host, netip.MustParseAddr(c.seen)), c.seen)
	}
	require.Equal(t, NAT66, TranslationOf(nil, netip.MustParseAddr("2001:db8::1")), "no host address known")
}
