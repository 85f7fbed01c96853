package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/stretchr/testify/require"
)

// TestServerReflectionBound: whatever a spoofed request looks like, the
// answer is one packet of at most MaxAnswerSize bytes, at most
// 20+MaxAnswerSize/20 times the request (IPv6, all four sockets, a bare
// 20-byte request: 92 bytes, 4.6x; IPv4 to a primary-only server: 44, 2.2x).
func TestServerReflectionBound(t *testing.T) {
	t.Parallel()
	shapes := map[string][]byte{
		"bare":        request(BindingOptions{NoFingerprint: true}),
		"fingerprint": request(BindingOptions{}),
		"change both": request(BindingOptions{ChangeIP: true, ChangePort: true, NoFingerprint: true}),
		"classic":     classicRequest(0),
		"classic chg": classicRequest(6),
		"unknown":     withAttr(request(BindingOptions{NoFingerprint: true}), 0x0024),
	}
	worst := 0.0
	for _, full := range []bool{false, true} {
		srv := startServer(t, full)
		for _, src := range []netip.AddrPort{netip.MustParseAddrPort("192.0.2.50:40000"), netip.MustParseAddrPort("[2001:db8::50]:40000")} {
			for name, req := range shapes {
				var out stun.Message
				_, _, ok := srv.respond(0, req, src, &out)
				require.True(t, ok, name)
				require.LessOrEqual(t, len(out.Raw), MaxAnswerSize, "%s from %v (full %v)", name, src, full)
				worst = max(worst, float64(len(out.Raw))/float64(len(req)))
				if name == "bare" && src.Addr().Is4() && !full {
					require.Equal(t, 44, len(out.Raw), "the documented 2.2x")
				}
			}
		}
	}
	t.Logf("worst answer/request byte ratio: %.2f", worst)
	require.LessOrEqual(t, worst, 4.6)
}

// TestServerTotalRate: spoofing many sources does not multiply the
// answers: TotalRate holds for all of them together.
func TestServerTotalRate(t *testing.T) {
	t.Parallel()
	clk := &manualClock{now: time.Unix(1000, 0)}
	s, err := NewServer(ServerConfig{Primary: listenUDP(t, "127.0.0.1:0"), TotalRate: 10, Clock: clk})
	require.NoError(t, err)
	var out stun.Message
	req := request(BindingOptions{})
	answered := func(n int) int {
		ok := 0
		for i := range n {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 40000)
			if _, _, a := s.respond(0, req, src, &out); a {
				ok++
			}
		}
		return ok
	}
	require.Equal(t, 10, answered(1000), "one second's burst")
	clk.add(500 * time.Millisecond)
	require.Equal(t, 5, answered(1000), "then TotalRate")
	require.Equal(t, uint64(1985), s.Stats().RateLimited)
}
