package nat

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
)

// BenchmarkLabClassify compares the wall time of a full classification
// (mapping and filtering, RFC 5780) in the testbed, per NAT kind and with
// 20 % loss: Discover with its default settings against our server and
// against coturn, and coturn's turnutils_natdiscovery -m -f against coturn.
// Discover must answer as the lab's truth says in every iteration;
// natdiscovery's wrong answers (it has none without loss) are reported as
// wrong/op; requests/op counts what our server received. The blocked kind is left out: with no answer there is no
// round-trip time to derive timeouts from, and Discover waits out RFC
// 8489's schedule (39.5 s) or its context. Run it with -benchtime=3x.
func BenchmarkLabClassify(b *testing.B) {
	cases := []labCase{}
	for _, k := range netlab.Kinds {
		if k != netlab.Blocked {
			cases = append(cases, labCase{string(k), netlab.Config{Kind: k}})
		}
	}
	cases = append(cases, labCase{"eim-adf+loss20", netlab.Config{Kind: netlab.EIMADF, LossPercent: 20}})
	for _, lc := range cases {
		b.Run(lc.name, func(b *testing.B) {
			cfg := lc.cfg
			cfg.Coturn = true
			lab := netlab.New(b, cfg)
			srv := labServerTB(b, lab)
			truth := lab.Truth()
			coturn := netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)
			for _, s := range []struct {
				name string
				addr netip.AddrPort
			}{{"sipnat-Discover/ours", srv.Addrs()[0]}, {"sipnat-Discover/coturn", coturn}} {
				b.Run(s.name, func(b *testing.B) {
					b.ReportAllocs()
					before := srv.Stats()
					for range b.N {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						res, err := labDiscover(ctx, lab, s.addr, 0, 0)
						cancel()
						if err != nil || res.Mapping.String() != string(truth.Mapping) || res.Filtering.String() != string(truth.Filtering) {
							b.Fatalf("discover on %s: %v %v", truth, res, err)
						}
					}
					if s.addr == srv.Addrs()[0] { // what our server saw of it
						after := srv.Stats()
						reqs := after.Responses + after.Errors + after.RateLimited - before.Responses - before.Errors - before.RateLimited
						b.ReportMetric(float64(reqs)/float64(b.N), "requests/op")
					}
				})
			}
			b.Run("turnutils_natdiscovery/coturn", func(b *testing.B) {
				want := wantNatdiscovery(truth)
				wrong := 0
				for range b.N {
					out, err := runNatdiscovery(lab, netlab.CoturnPort)
					if err != nil {
						b.Fatalf("natdiscovery: %v: %s", err, out)
					}
					if natdiscoveryVerdict(out) != want {
						wrong++
					}
				}
				b.ReportMetric(float64(wrong)/float64(b.N), "wrong/op")
			})
		})
	}
}
