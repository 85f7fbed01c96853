package agent

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/dnstest"
	"github.com/stretchr/testify/require"
)

// TestResolveTarget: an IP literal is taken as it is; a name is looked up
// (A and AAAA) at a DNS server on loopback; a name without records gives
// the name, no address and an error.
func TestResolveTarget(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr
	r := dnstest.Resolver(t, map[string][]netip.Addr{
		"v4.example.net":   {a("198.51.100.2")},
		"dual.example.net": {a("198.51.100.2"), a("2001:db8:fe::2")},
	})
	for _, c := range []struct {
		uri  string
		want CallTarget
		err  string
	}{
		{"sip:bob@198.51.100.2:5080", CallTarget{Addrs: []netip.Addr{a("198.51.100.2")}}, ""},
		{"sips:bob@[2001:db8:fe::2]:5061;transport=tls", CallTarget{Addrs: []netip.Addr{a("2001:db8:fe::2")}}, ""},
		{"sip:[::ffff:198.51.100.2]", CallTarget{Addrs: []netip.Addr{a("198.51.100.2")}}, ""},
		{"sip:bob@v4.example.net", CallTarget{Name: "v4.example.net", Addrs: []netip.Addr{a("198.51.100.2")}}, ""},
		{"sip:bob@dual.example.net:5060;user=phone", CallTarget{Name: "dual.example.net", Addrs: []netip.Addr{a("198.51.100.2"), a("2001:db8:fe::2")}}, ""},
		{"sip:bob@none.example.net", CallTarget{Name: "none.example.net"}, "call target none.example.net: resolve"},
		{"bob at home", CallTarget{}, `call target "bob at home"`},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := ResolveTarget(ctx, r, c.uri)
		cancel()
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.uri)
		} else {
			require.NoError(t, err, c.uri)
		}
		require.ElementsMatch(t, c.want.Addrs, got.Addrs, c.uri)
		require.Equal(t, c.want.Name, got.Name, c.uri)
	}
}
