package netlab_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
)

// Example lists the NAT kinds a lab can be built with, in the order the
// tests walk them.
func Example() {
	for _, k := range netlab.Kinds {
		fmt.Println(k)
	}
	// Output:
	// eim-eif
	// eim-adf
	// eim-apdf
	// adm-apdf
	// apdm
	// none
	// blocked
}

// ExampleNew builds a lab inside a test, opens the UA's socket on the LAN
// node and compares what the code under test finds with the lab's truth.
// It needs root and Debian's tools, so it is compiled here, not run.
func ExampleNew() {
	test := func(t *testing.T) {
		lab := netlab.New(t, netlab.Config{Kind: netlab.APDM, Timeout: 5 * time.Second, Stund: true})
		conn := lab.ListenUDP(netlab.LAN, netip.MustParseAddrPort("0.0.0.0:5060"))
		defer conn.Close()
		truth := lab.Truth() // what a correct classifier must say
		t.Logf("want %s", truth)
	}
	_ = test
}
