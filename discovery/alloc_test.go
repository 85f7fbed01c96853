package discovery

import (
	"net/netip"
	"testing"
)

var (
	benchClient = netip.MustParseAddr("192.168.1.10")
	benchNonce  = [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	benchPCP    = func() []byte {
		b := appendPCPMapRequest(nil, benchNonce, false, benchClient, 5060, 5060, netip.Addr{}, 7200)
		b[1] |= 0x80
		return b
	}()
	benchPMP = []byte{0, 129, 0, 0, 0, 0, 1, 0, 0x13, 0xc4, 0x13, 0xc5, 0, 0, 0, 60}
)

// TestCodecAllocs proves the NAT-PMP and PCP encoders append into the
// caller's buffer and the decoders allocate nothing.
func TestCodecAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	buf := make([]byte, 0, 128)
	for name, f := range map[string]func(){
		"pcp encode": func() {
			buf = appendPCPMapRequest(buf[:0], benchNonce, false, benchClient, 5060, 5060, netip.Addr{}, 7200)
		},
		"pmp encode": func() { buf = appendPMPMapRequest(buf[:0], false, 5060, 5060, 7200) },
		"pcp decode": func() { _, _ = parsePCPResponse(benchPCP) },
		"pmp decode": func() { _, _ = parsePMPResponse(benchPMP) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

func BenchmarkPCPMapRoundTrip(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 128)
	for i := 0; i < b.N; i++ {
		buf = appendPCPMapRequest(buf[:0], benchNonce, false, benchClient, 5060, 5060, netip.Addr{}, 7200)
		if _, err := parsePCPResponse(benchPCP); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPMPMapRoundTrip(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 128)
	for i := 0; i < b.N; i++ {
		buf = appendPMPMapRequest(buf[:0], false, 5060, 5060, 7200)
		if _, err := parsePMPResponse(benchPMP); err != nil {
			b.Fatal(err)
		}
	}
}
