package dnstest_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/sipnat/sipnat/internal/dnstest"
)

// exampleTB is the part of testing.TB that Resolver uses, so that the
// example runs outside a test; a test passes its own t.
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (t *exampleTB) Helper()                        {}
func (t *exampleTB) Cleanup(f func())               { t.cleanups = append(t.cleanups, f) }
func (t *exampleTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// ExampleResolver answers a name's A and AAAA records from loopback, and
// NXDOMAIN for a name it was not given.
func ExampleResolver() {
	t := &exampleTB{}
	defer func() {
		for _, f := range t.cleanups {
			f()
		}
	}()
	r := dnstest.Resolver(t, map[string][]netip.Addr{
		"pbx.example.net": {netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")},
	})
	ctx := context.Background()
	for _, network := range []string{"ip4", "ip6"} {
		addrs, err := r.LookupNetIP(ctx, network, "pbx.example.net")
		fmt.Println(network, addrs, err)
	}
	_, err := r.LookupNetIP(ctx, "ip", "other.example.net")
	fmt.Println("other.example.net found:", err == nil)
	// Output:
	// ip4 [192.0.2.7] <nil>
	// ip6 [2001:db8::7] <nil>
	// other.example.net found: false
}
