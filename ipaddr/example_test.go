package ipaddr_test

import (
	"fmt"
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

func ExampleClassify() {
	for _, s := range []string{"192.168.1.10", "100.64.0.2", "203.0.113.1", "8.8.8.8"} {
		a := netip.MustParseAddr(s)
		fmt.Printf("%s: %v, private %v\n", s, ipaddr.Classify(a), ipaddr.IsPrivate(a))
	}
	// Output:
	// 192.168.1.10: private, private true
	// 100.64.0.2: shared (RFC 6598), private true
	// 203.0.113.1: documentation, private false
	// 8.8.8.8: public, private false
}

func ExampleSynthesizeNAT64() {
	// An IPv6-only phone behind NAT64 got c=IN IP4 198.51.100.2 from an
	// IPv4-only peer; it sends its RTP to the address the NAT64 translates.
	prefixes := ipaddr.NAT64PrefixesFrom([]netip.Addr{netip.MustParseAddr("64:ff9b::c000:aa")})
	dst, _ := ipaddr.SynthesizeNAT64(prefixes[0], netip.MustParseAddr("198.51.100.2"))
	fmt.Println(prefixes[0], dst)
	// Output:
	// 64:ff9b::/96 64:ff9b::c633:6402
}
