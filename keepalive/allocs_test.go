package keepalive

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
)

// TestNoAllocs proves the hot paths allocate nothing: a Scheduler's pings
// and answers in steady state, RTP keep-alives and the keep parameter scan.
// (Not parallel: testing.AllocsPerRun needs the whole process.)
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	clk := clock.NewFake(epoch)
	var pings int
	s, err := NewScheduler(SchedulerConfig{Clock: clk, Tick: 10 * time.Millisecond, Capacity: 1000,
		Send: SenderFunc(func(Ping) error { pings++; return nil })})
	require.NoError(t, err)
	defer s.Stop()
	for i := 0; i < 1000; i++ {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), uint16(5060+i))
		require.NoError(t, s.Set(Contact{Addr: a, Interval: time.Second, Kind: PingOptions}))
	}
	clk.Advance(2 * time.Second) // warm up: batch buffers grown
	a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, 7}), 5067)
	require.Zero(t, testing.AllocsPerRun(100, func() {
		clk.Advance(10 * time.Millisecond)
		s.Answered(a)
	}), "scheduler tick")
	require.Positive(t, pings)

	buf := make([]byte, 0, 64)
	require.Zero(t, testing.AllocsPerRun(100, func() { buf = AppendRTPKeepalive(buf[:0], 127, 1, 2, 3) }), "RTP keep-alive")
	via := []byte(";branch=z9hG4bK1;rport=5060;keep=30")
	require.Zero(t, testing.AllocsPerRun(100, func() { KeepFromVia(via) }), "keep scan")
}
