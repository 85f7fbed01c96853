package nat

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
)

// BenchmarkLabClassify compares the wall time of a full classification
// (mapping and filtering, RFC 5780) in the testbed: Discover against our
// server and against coturn, and coturn's turnutils_natdiscovery -m -f
// against coturn, on the same eim-apdf NAT (filtering needs timeouts, the
// slow case). Run it with -benchtime=3x.
func BenchmarkLabClassify(b *testing.B) {
	lab := netlab.New(b, netlab.Config{Kind: netlab.EIMAPDF, Coturn: true})
	srv := labServerTB(b, lab)
	coturn := netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)
	for _, s := range []struct {
		name string
		addr netip.AddrPort
	}{{"sipnat-Discover/ours", srv.Addrs()[0]}, {"sipnat-Discover/coturn", coturn}} {
		b.Run(s.name, func(b *testing.B) {
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				res, err := labDiscover(ctx, lab, s.addr, 0, 0)
				cancel()
				if err != nil || res.Filtering != AddressAndPortDependent {
					b.Fatalf("discover: %v %v", res, err)
				}
			}
		})
	}
	b.Run("turnutils_natdiscovery/coturn", func(b *testing.B) {
		want := wantNatdiscovery(lab.Truth())
		for range b.N {
			out, err := runNatdiscovery(lab, netlab.CoturnPort)
			if got := natdiscoveryVerdict(out); err != nil || got != want {
				b.Fatalf("natdiscovery: %v: %s", err, out)
			}
		}
	})
}
