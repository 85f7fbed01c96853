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
