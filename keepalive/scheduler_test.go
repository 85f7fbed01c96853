package keepalive

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
)

type pingLog struct {
	mu    sync.Mutex
	clk   *clock.Fake
	pings []Ping
	at    []time.Time
	fail  map[netip.AddrPort]bool
}

func (l *pingLog) SendPing(p Ping) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pings = append(l.pings, p)
	l.at = append(l.at, l.clk.Now())
	if l.fail[p.Addr] {
		return errors.New("send failed")
	}
	return nil
}

func (l *pingLog) reset() {
	l.mu.Lock()
	l.pings, l.at = nil, nil
	l.mu.Unlock()
}

type contactEvents struct {
	mu sync.Mutex
	ev []ContactEvent
}

func (c *contactEvents) add(e ContactEvent) { c.mu.Lock(); c.ev = append(c.ev, e); c.mu.Unlock() }
func (c *contactEvents) get() []ContactEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ContactEvent(nil), c.ev...)
}

func newSched(t *testing.T, cfg SchedulerConfig) (*Scheduler, *clock.Fake, *pingLog, *contactEvents) {
	t.Helper()
	clk := clock.NewFake(epoch)
	l := &pingLog{clk: clk, fail: map[netip.AddrPort]bool{}}
	ev := &contactEvents{}
	cfg.Clock, cfg.Send, cfg.OnEvent = clk, l, ev.add
	if cfg.Rand == nil {
		cfg.Rand = rand.NewPCG(3, 4)
	}
	s, err := NewScheduler(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s, clk, l, ev
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestSchedulerValidation(t *testing.T) {
	t.Parallel()
	_, err := NewScheduler(SchedulerConfig{})
	require.Error(t, err)
	s, _, _, _ := newSched(t, SchedulerConfig{})
	for _, c := range []Contact{
		{},
		{Addr: ap("203.0.113.1:0"), Interval: time.Second, Kind: PingUDP},
		{Addr: ap("203.0.113.1:5060"), Interval: time.Second},
		{Addr: ap("203.0.113.1:5060"), Kind: PingUDP},
		{Addr: ap("203.0.113.1:5060"), Kind: PingUDP, Interval: 1 << 62},
	} {
		require.ErrorIs(t, s.Set(c), ErrInvalidContact, "%+v", c)
	}
	require.Zero(t, s.Len())
	s.Stop()
	require.ErrorIs(t, s.Set(Contact{Addr: ap("203.0.113.1:5060"), Kind: PingUDP, Interval: time.Second}), ErrStopped)
}

func TestSchedulerPingsAtInterval(t *testing.T) {
	t.Parallel()
	s, clk, l, _ := newSched(t, SchedulerConfig{Tick: 100 * time.Millisecond})
	a := ap("203.0.113.1:5060")
	b := ap("[2001:db8::1]:5070")
	require.NoError(t, s.Set(Contact{Addr: a, Interval: 2 * time.Second, Kind: PingUDP, Socket: 3}))
	require.NoError(t, s.Set(Contact{Addr: b, Interval: 5 * time.Second, Kind: PingOptions}))
	require.Equal(t, 2, s.Len())
	clk.Advance(20 * time.Second)
	var na, nb int
	var last = map[netip.AddrPort]time.Time{}
	for i, p := range l.pings {
		switch p.Addr {
		case a:
			na++
			require.Equal(t, PingUDP, p.Kind)
			require.Equal(t, uint16(3), p.Socket)
			if !last[a].IsZero() {
				require.Equal(t, 2*time.Second, l.at[i].Sub(last[a]))
			}
		case b:
			nb++
			require.Equal(t, PingOptions, p.Kind)
			if !last[b].IsZero() {
				require.Equal(t, 5*time.Second, l.at[i].Sub(last[b]))
			}
		default:
			t.Fatalf("ping to %v", p.Addr)
		}
		last[p.Addr] = l.at[i]
		require.Equal(t, uint32(i+1), p.Seq)
	}
	require.Equal(t, 10, na)
	require.Equal(t, 4, nb)
	require.Equal(t, uint64(14), s.Pings())

	// Update: the new interval applies from the last ping.
	require.NoError(t, s.Set(Contact{Addr: a, Interval: 500 * time.Millisecond, Kind: PingUDP}))
	l.reset()
	clk.Advance(5 * time.Second)
	na = 0
	for _, p := range l.pings {
		if p.Addr == a {
			na++
		}
	}
	require.InDelta(t, 10, na, 1)

	require.True(t, s.Remove(a))
	require.False(t, s.Remove(a))
	l.reset()
	clk.Advance(10 * time.Second)
	for _, p := range l.pings {
		require.Equal(t, b, p.Addr)
	}
	require.True(t, s.Remove(b))
	require.Zero(t, s.Len())
	clk.Advance(time.Second)
	require.Zero(t, clk.Pending(), "no timer runs without contacts")
}

func TestSchedulerSleepsBetweenPings(t *testing.T) {
	t.Parallel()
	s, clk, l, _ := newSched(t, SchedulerConfig{Tick: 100 * time.Millisecond})
	a := ap("203.0.113.1:5060")
	require.NoError(t, s.Set(Contact{Addr: a, Interval: 25 * time.Second, Kind: PingUDP}))
	d, ok := clk.NextIn()
	require.True(t, ok)
	require.Greater(t, d, 100*time.Millisecond, "the timer skips empty ticks")
	clk.Advance(d)
	require.Len(t, l.pings, 1)
	d, _ = clk.NextIn()
	require.Equal(t, 25*time.Second, d, "one wake-up per ping")
	// A contact due sooner re-arms the timer earlier.
	require.NoError(t, s.Set(Contact{Addr: ap("203.0.113.1:5061"), Interval: 200 * time.Millisecond, Kind: PingUDP}))
	d, _ = clk.NextIn()
	require.LessOrEqual(t, d, 200*time.Millisecond)
	require.Equal(t, 1, clk.Pending())
	clk.Advance(25 * time.Second)
	n := 0
	for _, p := range l.pings {
		if p.Addr == a {
			n++
		}
	}
	require.Equal(t, 2, n)
	// Intervals longer than the wheel (4096 ticks) wait whole rounds.
	s.Remove(a)
	s.Remove(ap("203.0.113.1:5061"))
	require.Zero(t, clk.Pending(), "no timer without contacts")
	l.reset()
	require.NoError(t, s.Set(Contact{Addr: a, Interval: 1000 * time.Second, Kind: PingUDP}))
	clk.Advance(3000 * time.Second)
	require.Equal(t, 3, len(l.pings))
	for i := 1; i < len(l.at); i++ {
		require.Equal(t, 1000*time.Second, l.at[i].Sub(l.at[i-1]))
	}
}

func TestSchedulerUnreachableAndAnswering(t *testing.T) {
	t.Parallel()
	s, clk, l, ev := newSched(t, SchedulerConfig{MaxMisses: 3, Tick: time.Second})
	good := ap("203.0.113.1:5060")
	dead := ap("203.0.113.1:5061")
	for _, a := range []netip.AddrPort{good, dead} {
		require.NoError(t, s.Set(Contact{Addr: a, Interval: 10 * time.Second, Kind: PingOptions}))
	}
	answer := func() {
		l.mu.Lock()
		ps := append([]Ping(nil), l.pings...)
		l.pings = nil
		l.mu.Unlock()
		for _, p := range ps {
			if p.Addr == good {
				require.True(t, s.Answered(good))
			}
		}
	}
	for i := 0; i < 3; i++ { // pings 1..3 of dead unanswered; misses counted at pings 2..4
		clk.Advance(10 * time.Second)
		answer()
	}
	m, ok := s.Misses(dead)
	require.True(t, ok)
	require.Equal(t, 2, m)
	require.Empty(t, ev.get())
	clk.Advance(10 * time.Second)
	answer()
	require.Equal(t, []ContactEvent{{Kind: Unreachable, Addr: dead, Misses: 3}}, ev.get())
	clk.Advance(30 * time.Second)
	answer()
	require.Len(t, ev.get(), 1, "reported once")
	m, _ = s.Misses(good)
	require.Zero(t, m)

	require.True(t, s.Answered(dead))
	require.Equal(t, ContactEvent{Kind: Answering, Addr: dead, Misses: 6}, ev.get()[1])
	require.False(t, s.Answered(ap("198.51.100.2:5060")))
	_, ok = s.Misses(ap("198.51.100.2:5060"))
	require.False(t, ok)
}

func TestSchedulerUDPSendErrors(t *testing.T) {
	t.Parallel()
	s, clk, l, ev := newSched(t, SchedulerConfig{MaxMisses: 2, Tick: time.Second})
	a := ap("203.0.113.1:5060")
	l.fail[a] = true
	require.NoError(t, s.Set(Contact{Addr: a, Interval: 5 * time.Second, Kind: PingUDP}))
	clk.Advance(5 * time.Second)
	require.Empty(t, ev.get())
	clk.Advance(5 * time.Second)
	require.Equal(t, []ContactEvent{{Kind: Unreachable, Addr: a, Misses: 2}}, ev.get())
}

func TestSchedulerRemoveFromEvent(t *testing.T) {
	t.Parallel()
	var s *Scheduler
	clk := clock.NewFake(epoch)
	l := &pingLog{clk: clk}
	s, err := NewScheduler(SchedulerConfig{Clock: clk, Send: l, MaxMisses: 1, Tick: time.Second,
		OnEvent: func(e ContactEvent) { s.Remove(e.Addr) }})
	require.NoError(t, err)
	require.NoError(t, s.Set(Contact{Addr: ap("203.0.113.1:5060"), Interval: 2 * time.Second, Kind: PingOptions}))
	clk.Advance(10 * time.Second)
	require.Zero(t, s.Len())
}

func TestSchedulerLateClock(t *testing.T) {
	t.Parallel()
	// A clock jump longer than the wheel (a suspended host) pings every contact once.
	s, clk, l, _ := newSched(t, SchedulerConfig{Tick: 10 * time.Millisecond})
	for i := 0; i < 100; i++ {
		require.NoError(t, s.Set(Contact{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, 1}), uint16(1000+i)), Interval: time.Second, Kind: PingUDP}))
	}
	// Fake the jump: move time without running timers, then run the tick.
	s.mu.Lock()
	s.base = s.base.Add(-2 * time.Minute)
	s.mu.Unlock()
	clk.Advance(10 * time.Millisecond)
	require.Equal(t, 100, len(l.pings))
}

func TestScheduler100k(t *testing.T) {
	t.Parallel()
	const n = 100_000
	s, clk, l, ev := newSched(t, SchedulerConfig{Tick: 100 * time.Millisecond, Capacity: n / 2})
	addrOf := func(i int) netip.AddrPort {
		if i%2 == 0 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(5060+i%7))
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), 5060)
	}
	for i := 0; i < n; i++ {
		require.NoError(t, s.Set(Contact{Addr: addrOf(i), Interval: 30 * time.Second, Kind: PingOptions}))
	}
	require.Equal(t, n, s.Len())
	require.LessOrEqual(t, len(s.tab.recs), n+1)

	// One interval: every contact pinged exactly once, spread over the interval.
	clk.Advance(30 * time.Second)
	require.Equal(t, n, len(l.pings))
	seen := make(map[netip.AddrPort]int, n)
	perSecond := make(map[int64]int)
	for i, p := range l.pings {
		seen[p.Addr]++
		perSecond[int64(l.at[i].Sub(epoch)/time.Second)]++
	}
	require.Equal(t, n, len(seen))
	for sec, c := range perSecond {
		if sec == 0 || sec == 30 { // partial seconds: ticks 1-9 and 300
			continue
		}
		require.InDelta(t, n/30, c, n/30/4, "second %d: %d pings (spread)", sec, c)
	}
	for i := 0; i < n; i++ {
		if i%1000 != 0 {
			require.True(t, s.Answered(addrOf(i)))
		}
	}
	l.reset()
	// Next interval: still once each; the 100 that never answered are reported
	// after three misses.
	clk.Advance(30 * time.Second)
	require.Equal(t, n, len(l.pings))
	for range 3 {
		l.reset()
		for i := 0; i < n; i++ {
			if i%1000 != 0 {
				s.Answered(addrOf(i))
			}
		}
		clk.Advance(30 * time.Second)
	}
	got := ev.get()
	require.Equal(t, n/1000, len(got))
	for _, e := range got {
		require.Equal(t, Unreachable, e.Kind)
		require.Equal(t, 3, e.Misses)
	}
	for i := 0; i < n; i += 1000 {
		m, ok := s.Misses(addrOf(i))
		require.True(t, ok)
		require.GreaterOrEqual(t, m, 3)
	}
	for i := 0; i < n; i += 2 {
		require.True(t, s.Remove(addrOf(i)))
	}
	require.Equal(t, n/2, s.Len())
	// Freed records are reused: the slab does not grow.
	before := len(s.tab.recs)
	for i := 0; i < n; i += 2 {
		require.NoError(t, s.Set(Contact{Addr: addrOf(i), Interval: 30 * time.Second, Kind: PingUDP}))
	}
	require.Equal(t, before, len(s.tab.recs))
	require.Equal(t, n, s.Len())
}

func TestRecordSize(t *testing.T) {
	t.Parallel()
	require.Equal(t, 52, int(sizeofRecord))
}

// TestSchedulerFlood: a REGISTER flood or contact churn cannot grow the
// scheduler past MaxContacts (the contact set longest ago is evicted and
// reported), and its ping rate stays under MaxRate however many contacts
// and however short their intervals.
func TestSchedulerFlood(t *testing.T) {
	t.Parallel()
	const max = 1000
	s, clk, l, ev := newSched(t, SchedulerConfig{Tick: 100 * time.Millisecond, MaxContacts: max, MaxRate: 100})
	addrOf := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), uint16(1024+i%60000))
	}
	refreshed := addrOf(2*max - max/2) // the next to go when it registers again
	for i := 0; i < 3*max; i++ {
		if i == 2*max+max/2 {
			require.NoError(t, s.Set(Contact{Addr: refreshed, Interval: time.Second, Kind: PingUDP}))
		}
		require.NoError(t, s.Set(Contact{Addr: addrOf(i), Interval: time.Second, Kind: PingUDP}))
	}
	require.Equal(t, max, s.Len())
	require.LessOrEqual(t, len(s.tab.recs), max+1, "memory bounded by MaxContacts")
	require.Equal(t, uint64(2*max), s.Evicted())
	var want []netip.AddrPort
	for i := 0; i <= 2*max; i++ {
		if addrOf(i) != refreshed {
			want = append(want, addrOf(i))
		}
	}
	var evicted []netip.AddrPort
	for _, e := range ev.get() {
		require.Equal(t, Evicted, e.Kind)
		evicted = append(evicted, e.Addr)
	}
	require.Equal(t, want, evicted, "oldest first, the refreshed one kept")
	_, ok := s.Misses(refreshed)
	require.True(t, ok)

	// 1000 contacts at 1 s would be 1000 pings/s: MaxRate 100 holds, with a
	// burst of one second's worth, and every contact still gets its turn
	pinged := map[netip.AddrPort]bool{}
	perSecond := make([]int, 0, 13)
	for sec := 0; sec < 13; sec++ {
		l.reset()
		for range 10 {
			clk.Advance(100 * time.Millisecond)
		}
		perSecond = append(perSecond, len(l.pings))
		for _, p := range l.pings {
			pinged[p.Addr] = true
		}
	}
	t.Logf("pings per second under MaxRate 100 with 1000 contacts at 1 s: %v, throttled ticks %d", perSecond, s.Throttled())
	require.LessOrEqual(t, perSecond[0], 200, "first second: burst + rate")
	for _, n := range perSecond[1:] {
		require.LessOrEqual(t, n, 100)
		require.GreaterOrEqual(t, n, 90, "the cap is used, not starved")
	}
	require.Positive(t, s.Throttled())
	require.Len(t, pinged, max, "every contact pinged within MaxContacts/MaxRate seconds")
}
