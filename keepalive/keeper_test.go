package keepalive

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/sipmsg"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// wire records what a Keeper sends, with the fake time of each send.
type wire struct {
	mu    sync.Mutex
	clk   *clock.Fake
	pkts  [][]byte
	times []time.Time
	err   error
}

func (w *wire) send(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pkts = append(w.pkts, append([]byte(nil), b...))
	w.times = append(w.times, w.clk.Now())
	return w.err
}

func (w *wire) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pkts)
}

// gaps returns the time between consecutive sends.
func (w *wire) gaps() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var g []time.Duration
	for i := 1; i < len(w.times); i++ {
		g = append(g, w.times[i].Sub(w.times[i-1]))
	}
	return g
}

type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }
func (l *eventLog) kinds() []EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var k []EventKind
	for _, e := range l.ev {
		k = append(k, e.Kind)
	}
	return k
}

func newKeeper(t *testing.T, cfg KeeperConfig) (*Keeper, *clock.Fake, *wire, *eventLog) {
	t.Helper()
	clk := clock.NewFake(epoch)
	w := &wire{clk: clk}
	ev := &eventLog{}
	cfg.Clock = clk
	if cfg.Send == nil && cfg.Kind != STUN {
		cfg.Send = w.send
	}
	cfg.OnEvent = ev.add
	if cfg.Rand == nil {
		cfg.Rand = rand.NewPCG(7, 7)
	}
	k, err := NewKeeper(cfg)
	require.NoError(t, err)
	t.Cleanup(k.Stop)
	return k, clk, w, ev
}

func TestNewConfigErrors(t *testing.T) {
	t.Parallel()
	send := func([]byte) error { return nil }
	for _, cfg := range []KeeperConfig{
		{},
		{Kind: CRLF},
		{Kind: Options, Send: send},
		{Kind: STUN},
		{Kind: STUN, Binder: &fakeBinder{}},
		{Kind: 99, Send: send},
	} {
		_, err := NewKeeper(cfg)
		require.ErrorIs(t, err, ErrConfig, "%+v", cfg)
	}
}

func TestCRLFPingPong(t *testing.T) {
	t.Parallel()
	k, clk, w, ev := newKeeper(t, KeeperConfig{Kind: CRLF, Timing: Timing{Interval: 30 * time.Second}})
	require.Equal(t, 30*time.Second, k.Interval())
	k.Start()
	// Twenty answered pings, each 80–100 % of the interval after the previous pong.
	for i := 0; i < 20; i++ {
		d, ok := clk.NextIn()
		require.True(t, ok)
		require.True(t, d >= 24*time.Second && d <= 30*time.Second, "ping %d due in %v", i, d)
		clk.Advance(d - time.Millisecond)
		require.Equal(t, i, w.count(), "ping %d early", i)
		clk.Advance(time.Millisecond)
		require.Equal(t, i+1, w.count(), "ping %d late", i)
		require.Equal(t, "\r\n\r\n", string(w.pkts[i]))
		clk.Advance(50 * time.Millisecond) // round trip
		require.True(t, k.Answer(), "pong %d", i)
		require.False(t, k.Answer(), "second pong counts once")
	}
	require.Empty(t, ev.kinds())
	require.False(t, k.Failed())
}

func TestCRLFNoPongFailsAndBacksOff(t *testing.T) {
	t.Parallel()
	k, clk, w, ev := newKeeper(t, KeeperConfig{
		Kind: CRLF, Timing: Timing{Interval: 20 * time.Second, NoJitter: true},
		MaxBackoff: 100 * time.Second,
	})
	k.Start()
	clk.Advance(20 * time.Second)
	require.Equal(t, 1, w.count())
	clk.Advance(DefaultTimeout - time.Millisecond)
	require.Empty(t, ev.kinds(), "failed before the 10 s pong timeout")
	clk.Advance(time.Millisecond)
	require.Equal(t, []EventKind{FlowFailed}, ev.kinds())
	require.ErrorIs(t, ev.ev[0].Err, ErrNoAnswer)
	require.True(t, k.Failed())
	// Unanswered probes of the failed flow back off: 20, 40, 80, 100 (cap), 100 s
	// after each timeout, each followed by its 10 s wait.
	for _, wait := range []time.Duration{20, 40, 80, 100, 100} {
		n := w.count()
		clk.Advance(wait*time.Second - time.Millisecond)
		require.Equal(t, n, w.count(), "probe before %v s of backoff", wait)
		clk.Advance(time.Millisecond)
		require.Equal(t, n+1, w.count(), "probe after %v s of backoff", wait)
		clk.Advance(DefaultTimeout)
	}
	require.Equal(t, []EventKind{FlowFailed}, ev.kinds(), "FlowFailed is reported once")
	// A pong recovers the flow and restores the normal interval.
	clk.Advance(100 * time.Second)
	require.True(t, k.Answer())
	require.Equal(t, []EventKind{FlowFailed, Recovered}, ev.kinds())
	require.False(t, k.Failed())
	n := w.count()
	clk.Advance(20 * time.Second)
	require.Equal(t, n+1, w.count())
}

func TestMaxMisses(t *testing.T) {
	t.Parallel()
	k, clk, _, ev := newKeeper(t, KeeperConfig{
		Kind: CRLF, Timing: Timing{Interval: 20 * time.Second, NoJitter: true}, MaxMisses: 3,
	})
	k.Start()
	for i := 0; i < 2; i++ {
		clk.Advance(30 * time.Second)
	}
	require.Empty(t, ev.kinds(), "two misses of three")
	clk.Advance(30 * time.Second)
	require.Equal(t, []EventKind{FlowFailed}, ev.kinds())
	require.Equal(t, 3, ev.ev[0].Misses)
}

type fakeBinder struct {
	mu     sync.Mutex
	mapped netip.AddrPort
	err    error
	calls  int
	server netip.AddrPort
}

func (b *fakeBinder) Binding(ctx context.Context, server netip.AddrPort) (netip.AddrPort, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	b.server = server
	if err := ctx.Err(); err != nil {
		return netip.AddrPort{}, err
	}
	return b.mapped, b.err
}

func (b *fakeBinder) set(m netip.AddrPort, err error) {
	b.mu.Lock()
	b.mapped, b.err = m, err
	b.mu.Unlock()
}

func TestSTUNMappingChanged(t *testing.T) {
	t.Parallel()
	srv := netip.MustParseAddrPort("203.0.113.2:5060")
	m1 := netip.MustParseAddrPort("203.0.113.1:5060")
	m2 := netip.MustParseAddrPort("203.0.113.1:40017")
	b := &fakeBinder{mapped: m1}
	k, clk, _, ev := newKeeper(t, KeeperConfig{Kind: STUN, Binder: b, Server: srv, Timing: Timing{Lifetime: 30 * time.Second}})
	require.Equal(t, 15*time.Second, k.Interval())
	k.Start()
	clk.Advance(15 * time.Second)
	require.Equal(t, 1, b.calls)
	require.Equal(t, srv, b.server)
	require.Equal(t, m1, k.Mapping())
	require.Empty(t, ev.kinds(), "the first mapping is not a change")
	clk.Advance(15 * time.Second)
	require.Equal(t, 2, b.calls)

	b.set(m2, nil)
	clk.Advance(15 * time.Second) // within one interval
	require.Equal(t, []EventKind{MappingChanged}, ev.kinds())
	require.Equal(t, m1, ev.ev[0].Previous)
	require.Equal(t, m2, ev.ev[0].Mapping)
	require.Equal(t, m2, k.Mapping())
	require.Contains(t, ev.ev[0].String(), "203.0.113.1:5060 -> 203.0.113.1:40017")

	b.set(netip.AddrPort{}, errors.New("timeout"))
	clk.Advance(15 * time.Second)
	require.Equal(t, []EventKind{MappingChanged, FlowFailed}, ev.kinds())
	b.set(m2, nil)
	clk.Advance(15 * time.Second)
	require.Equal(t, []EventKind{MappingChanged, FlowFailed, Recovered}, ev.kinds())
	require.False(t, k.Answer(), "STUN answers come from the Binder")
}

// A Keeper started with the mapping the registrar saw reports a first
// STUN answer that differs (a router reboot before the first keep-alive).
func TestSTUNKnownMapping(t *testing.T) {
	t.Parallel()
	m1 := netip.MustParseAddrPort("203.0.113.1:5060")
	m2 := netip.MustParseAddrPort("203.0.113.1:40017")
	b := &fakeBinder{mapped: m2}
	k, clk, _, ev := newKeeper(t, KeeperConfig{Kind: STUN, Binder: b, Server: netip.MustParseAddrPort("203.0.113.2:5060"),
		Mapping: m1, Timing: Timing{Interval: 10 * time.Second, NoJitter: true}})
	require.Equal(t, m1, k.Mapping())
	k.Start()
	clk.Advance(10 * time.Second)
	require.Equal(t, []EventKind{MappingChanged}, ev.kinds())
	require.Equal(t, m1, ev.ev[0].Previous)
	require.Equal(t, m2, ev.ev[0].Mapping)
}

// slowBinder blocks until its context ends, like a STUN request that gets no answer.
type slowBinder struct{ calls chan struct{} }

func (b slowBinder) Binding(ctx context.Context, _ netip.AddrPort) (netip.AddrPort, error) {
	b.calls <- struct{}{}
	<-ctx.Done()
	return netip.AddrPort{}, ctx.Err()
}

func TestSTUNTimeoutOnClock(t *testing.T) {
	t.Parallel()
	b := slowBinder{calls: make(chan struct{}, 1)}
	k, clk, _, ev := newKeeper(t, KeeperConfig{Kind: STUN, Binder: b, Server: netip.MustParseAddrPort("203.0.113.2:3478"),
		Timing: Timing{Interval: 10 * time.Second, NoJitter: true}, Timeout: 3 * time.Second})
	k.Start()
	go clk.Advance(10 * time.Second) // runs the keep-alive, which blocks in Binding
	<-b.calls
	// The request's deadline is a clock timer: advancing the clock ends it.
	deadline := time.Now().Add(5 * time.Second)
	for len(ev.kinds()) == 0 && time.Now().Before(deadline) {
		clk.Advance(time.Second)
		time.Sleep(time.Millisecond) // yield to the goroutine inside Binding
	}
	require.Equal(t, []EventKind{FlowFailed}, ev.kinds())
	require.ErrorIs(t, ev.ev[0].Err, context.Canceled)
}

func TestOptionsRetransmitAndAnswer(t *testing.T) {
	t.Parallel()
	var ns []uint32
	req := func(dst []byte, n uint32) []byte {
		ns = append(ns, n)
		return append(dst, "OPTIONS sip:203.0.113.2 SIP/2.0\r\nCSeq: "+strconv.Itoa(int(n))+" OPTIONS\r\n\r\n"...)
	}
	k, clk, w, ev := newKeeper(t, KeeperConfig{Kind: Options, Request: req, Timing: Timing{Interval: 30 * time.Second, NoJitter: true}})
	k.Start()
	clk.Advance(30 * time.Second)
	require.Equal(t, 1, w.count())
	// RFC 3261 timer A/E: retransmit after 0.5, 1, 2, 4, 4 s ... until the 10 s timeout.
	clk.Advance(DefaultTimeout - time.Millisecond)
	require.Equal(t, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}, w.gaps())
	require.Equal(t, []uint32{1}, ns, "retransmissions resend the same request")
	require.True(t, k.Answer(), "any response counts")
	require.Empty(t, ev.kinds())
	n := w.count()
	clk.Advance(30 * time.Second)
	require.Equal(t, n+1, w.count())
	require.Equal(t, []uint32{1, 2}, ns)
	require.Contains(t, string(w.pkts[n]), "CSeq: 2 OPTIONS")
	clk.Advance(DefaultTimeout)
	require.Equal(t, []EventKind{FlowFailed}, ev.kinds())
}

func TestOptionsReliableNoRetransmit(t *testing.T) {
	t.Parallel()
	req := func(dst []byte, n uint32) []byte { return append(dst, "OPTIONS"...) }
	k, clk, w, ev := newKeeper(t, KeeperConfig{Kind: Options, Request: req, Transport: sipmsg.TCP, Timing: Timing{Interval: 30 * time.Second, NoJitter: true}})
	require.Equal(t, 30*time.Second, k.Interval())
	k.Start()
	clk.Advance(30*time.Second + DefaultTimeout)
	require.Equal(t, 1, w.count())
	require.Equal(t, []EventKind{FlowFailed}, ev.kinds())
}

func TestUDPKeepalive(t *testing.T) {
	t.Parallel()
	k, clk, w, ev := newKeeper(t, KeeperConfig{Kind: UDP, Timing: Timing{Lifetime: 5 * time.Second}})
	k.Start()
	clk.Advance(time.Minute)
	// 2.5 s base interval, jittered to 2–2.5 s.
	require.GreaterOrEqual(t, w.count(), 24)
	require.LessOrEqual(t, w.count(), 30)
	for _, g := range w.gaps() {
		require.True(t, g >= 2*time.Second && g <= 2500*time.Millisecond, "gap %v", g)
	}
	require.Equal(t, "\r\n\r\n", string(w.pkts[0]))
	require.Empty(t, ev.kinds())

	// Send errors are misses.
	w.mu.Lock()
	w.err = errors.New("network is unreachable")
	w.mu.Unlock()
	clk.Advance(3 * time.Second)
	require.Equal(t, []EventKind{FlowFailed}, ev.kinds())
	w.mu.Lock()
	w.err = nil
	w.mu.Unlock()
	clk.Advance(time.Minute)
	require.Equal(t, []EventKind{FlowFailed, Recovered}, ev.kinds())
}

func TestUDPPayload(t *testing.T) {
	t.Parallel()
	k, clk, w, _ := newKeeper(t, KeeperConfig{Kind: UDP, Payload: []byte{0, 0, 0, 0}, Timing: Timing{Interval: time.Second, NoJitter: true}})
	k.Start()
	clk.Advance(2 * time.Second)
	require.Equal(t, [][]byte{{0, 0, 0, 0}, {0, 0, 0, 0}}, w.pkts)
}

func TestRTPKeepalive(t *testing.T) {
	t.Parallel()
	k, clk, w, _ := newKeeper(t, KeeperConfig{Kind: RTP, RTP: RTPState{SSRC: 0xdeadbeef, Seq: 65534, Timestamp: 1000, ClockRate: 8000},
		Timing: Timing{Interval: 5 * time.Second, NoJitter: true}})
	k.Start()
	clk.Advance(15 * time.Second)
	require.Equal(t, 3, w.count())
	for i, p := range w.pkts {
		require.Len(t, p, 12, "header only")
		require.Equal(t, byte(0x80), p[0], "V=2, no padding/extension/CSRC")
		require.Equal(t, byte(DefaultRTPPayloadType), p[1], "unused payload type, no marker")
		require.Equal(t, uint16(65534+i), binary.BigEndian.Uint16(p[2:]), "sequence continues and wraps")
		require.Equal(t, uint32(1000+8000*5*(i+1)), binary.BigEndian.Uint32(p[4:]), "timestamp follows the clock")
		require.Equal(t, uint32(0xdeadbeef), binary.BigEndian.Uint32(p[8:]))
	}
	st := k.RTP()
	require.Equal(t, uint16(1), st.Seq)
	require.Equal(t, uint32(1000+8000*15), st.Timestamp)
}

func TestSetTimingNegotiated(t *testing.T) {
	t.Parallel()
	k, clk, w, _ := newKeeper(t, KeeperConfig{Kind: UDP, Timing: Timing{NoJitter: true}})
	require.Equal(t, DefaultDatagramInterval, k.Interval())
	k.Start()
	clk.Advance(10 * time.Second)
	tm := k.Timing()
	tm.Negotiated = 4 * time.Second // a registrar answered Via ...;keep=4
	k.SetTiming(tm)
	require.Equal(t, 4*time.Second, k.Interval())
	clk.Advance(12 * time.Second)
	require.Equal(t, 3, w.count())
}

func TestStopAndPingNow(t *testing.T) {
	t.Parallel()
	k, clk, w, _ := newKeeper(t, KeeperConfig{Kind: UDP, Timing: Timing{Interval: 10 * time.Second}})
	k.PingNow()
	require.Zero(t, w.count(), "not started")
	k.Start()
	k.Start()
	k.PingNow()
	require.Equal(t, 1, w.count())
	k.Stop()
	clk.Advance(time.Hour)
	require.Equal(t, 1, w.count())
	require.Zero(t, clk.Pending())
	k.Start()
	clk.Advance(10 * time.Second)
	require.Equal(t, 2, w.count())
	require.Equal(t, uint64(2), k.Sent())
}

func TestOptionsNoAnswer(t *testing.T) {
	t.Parallel()
	req := func(dst []byte, n uint32) []byte { return append(dst, "OPTIONS"...) }
	k, clk, w, ev := newKeeper(t, KeeperConfig{Kind: Options, Request: req, NoAnswer: true, Timing: Timing{Interval: 10 * time.Second, NoJitter: true}})
	k.Start()
	clk.Advance(time.Minute)
	require.Equal(t, 6, w.count(), "no retransmissions")
	require.Empty(t, ev.kinds(), "unanswered OPTIONS are not misses")
	require.False(t, k.Answer(), "nothing awaited")
}
