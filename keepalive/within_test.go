package keepalive

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pingSim drives a CRLF Keeper on its fake clock against a server that
// answers every ping after rtt while the flow lives, and dies at death.
type pingSim struct {
	t     *testing.T
	k     *Keeper
	w     *wire
	ev    *eventLog
	rtt   time.Duration
	death time.Time // zero: never
	pings []time.Time
}

// run advances the clock event by event until the Keeper reports
// FlowFailed or until limit, and returns when it did (zero: it did not).
func (s *pingSim) run(limit time.Time) time.Time {
	clk := s.w.clk
	var pongAt time.Time
	for clk.Now().Before(limit) {
		if n := s.w.count(); n > len(s.pings) {
			sent := s.w.times[n-1]
			s.pings = append(s.pings, sent)
			if s.death.IsZero() || s.death.After(sent.Add(s.rtt)) {
				pongAt = sent.Add(s.rtt)
			}
		}
		for _, e := range s.ev.ev {
			if e.Kind == FlowFailed {
				return e.At
			}
		}
		d, ok := clk.NextIn()
		require.True(s.t, ok, "the Keeper has nothing scheduled")
		if !pongAt.IsZero() && !clk.Now().Add(d).Before(pongAt) {
			clk.Advance(pongAt.Sub(clk.Now()))
			s.k.Answer()
			pongAt = time.Time{}
			continue
		}
		clk.Advance(d)
	}
	return time.Time{}
}

// With WithinInterval a flow that dies at any moment, the worst being
// right after an answer, is reported failed at most one base interval
// later, exactly on the fake clock; while it lives, the server hears a ping
// at least once per interval (RFC 5626 §4.4.1, Flow-Timer). Without it the
// same death takes up to an interval plus the 10 s pong timeout.
func TestWithinIntervalCRLF(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		base time.Duration // the registrar's Flow-Timer
		rtt  time.Duration
	}{
		{"lab: Flow-Timer 3 s, loopback", 3 * time.Second, 200 * time.Microsecond},
		{"Flow-Timer 30 s, 40 ms path", 30 * time.Second, 40 * time.Millisecond},
		{"RFC default 120 s, 900 ms path", 120 * time.Second, 900 * time.Millisecond},
		{"Flow-Timer 25 s, 3 s path", 25 * time.Second, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var worst time.Duration
			deaths := 0
			// the flow dies right after the 4th answer (the worst moment),
			// and at 200 other moments spread over two intervals after it
			for i := -1; i < 200; i++ {
				k, clk, w, ev := newKeeper(t, KeeperConfig{Kind: CRLF, Timing: Timing{Negotiated: tc.base},
					WithinInterval: true, Rand: rand.NewPCG(uint64(i+2), 9)})
				k.Start()
				s := &pingSim{t: t, k: k, w: w, ev: ev, rtt: tc.rtt}
				// warm up: four answered pings
				for len(s.pings) < 4 || clk.Now().Before(s.pings[3].Add(tc.rtt)) {
					require.Zero(t, s.run(clk.Now().Add(time.Millisecond)), "failed while alive")
				}
				death := clk.Now()
				if i >= 0 {
					death = death.Add(time.Duration(i) * 2 * tc.base / 200)
				}
				s.death = death
				failed := s.run(death.Add(10 * tc.base))
				require.False(t, failed.IsZero(), "death at +%v not detected", death.Sub(clk.Now()))
				lat := failed.Sub(death)
				require.LessOrEqual(t, lat, tc.base, "death %d detected after %v", i, lat)
				require.ErrorIs(t, ev.ev[0].Err, ErrNoAnswer)
				worst = max(worst, lat)
				deaths++
				// while it lived, a ping at least once per interval
				prev := epoch
				for _, p := range s.pings {
					if p.After(death) {
						break
					}
					require.LessOrEqual(t, p.Sub(prev), tc.base, "the server heard nothing for longer than its Flow-Timer")
					prev = p
				}
				k.Stop()
			}
			t.Logf("%s: %d deaths, the latest detected %v after (interval %v)", tc.name, deaths, worst, tc.base)
			require.Greater(t, worst, tc.base*4/5-tc.base*2/5, "the worst moment was exercised")
		})
	}
}

// Without WithinInterval (the Keeper's default) the wait adds to the
// interval: a death right after an answer is found up to interval + 10 s
// later. The contrast shows what WithinInterval buys.
func TestWithoutWithinInterval(t *testing.T) {
	t.Parallel()
	base := 30 * time.Second
	k, clk, w, ev := newKeeper(t, KeeperConfig{Kind: CRLF, Timing: Timing{Negotiated: base, NoJitter: true}})
	k.Start()
	s := &pingSim{t: t, k: k, w: w, ev: ev, rtt: 40 * time.Millisecond}
	for len(s.pings) < 2 || clk.Now().Before(s.pings[1].Add(s.rtt)) {
		require.Zero(t, s.run(clk.Now().Add(time.Millisecond)))
	}
	s.death = clk.Now()
	failed := s.run(s.death.Add(10 * base))
	require.Equal(t, base+DefaultTimeout, failed.Sub(s.death))
}

// The wait for an answer: the whole bound (Timeout, at most 2/5 of the
// interval) before the first answer, then the RTO of the round trips with
// RFC 6298's 1 s floor; a slow answer raises it.
func TestWithinIntervalWait(t *testing.T) {
	t.Parallel()
	k, clk, w, _ := newKeeper(t, KeeperConfig{Kind: CRLF, Timing: Timing{Negotiated: 30 * time.Second, NoJitter: true}, WithinInterval: true})
	require.Equal(t, DefaultTimeout, k.AnswerTimeout(), "no sample: 10 s (below 2/5 of 30 s)")
	k.Start()
	clk.Advance(20 * time.Second) // 30 s less the 10 s wait
	require.Equal(t, 1, w.count())
	clk.Advance(30 * time.Millisecond)
	require.True(t, k.Answer())
	require.Equal(t, DefaultMinTimeout, k.AnswerTimeout(), "a 30 ms path: RFC 6298's 1 s floor")
	next, _ := clk.NextIn()
	require.Equal(t, 29*time.Second, next, "the next ping leaves 30 s less the 1 s wait after the pong")
	clk.Advance(next + 990*time.Millisecond) // answered after 990 ms, just within its wait
	require.True(t, k.Answer())
	require.Equal(t, 1155*time.Millisecond, k.AnswerTimeout(), "a slow answer raises the wait: SRTT 150 ms + 4 x RTTVAR 251.25 ms")

	k2, _, _, _ := newKeeper(t, KeeperConfig{Kind: CRLF, Timing: Timing{Negotiated: 3 * time.Second}, WithinInterval: true})
	require.Equal(t, 1200*time.Millisecond, k2.AnswerTimeout(), "a 3 s interval caps the wait at 2/5 of it")
	k3, _, _, _ := newKeeper(t, KeeperConfig{Kind: UDP, Timing: Timing{Negotiated: 3 * time.Second}, WithinInterval: true})
	require.Equal(t, DefaultTimeout, k3.AnswerTimeout(), "kinds without answers are not changed")
}

// STUN keep-alives (UDP flows): a binding answered with a new mapping (a
// router reboot) or with an error is reported within one interval of the
// moment it broke, right after an answer at the worst: the next Binding
// leaves the interval less its wait after the answer. A silent one is cut
// at that wait (AnswerTimeout), so it too is reported within the interval.
func TestWithinIntervalSTUN(t *testing.T) {
	t.Parallel()
	srv := netip.MustParseAddrPort("203.0.113.2:5060")
	m1 := netip.MustParseAddrPort("203.0.113.1:5060")
	m2 := netip.MustParseAddrPort("203.0.113.1:40017")
	base := 3 * time.Second
	for _, tc := range []struct {
		name  string
		after func(b *fakeBinder)
		want  EventKind
	}{
		{"mapping changed", func(b *fakeBinder) { b.set(m2, nil) }, MappingChanged},
		{"error answer", func(b *fakeBinder) { b.set(netip.AddrPort{}, context.DeadlineExceeded) }, FlowFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeBinder{mapped: m1}
			k, clk, _, ev := newKeeper(t, KeeperConfig{Kind: STUN, Binder: b, Server: srv, Timing: Timing{Negotiated: base}, WithinInterval: true})
			k.Start()
			for b.calls < 3 {
				d, _ := clk.NextIn()
				clk.Advance(d)
			}
			require.Empty(t, ev.kinds())
			require.Equal(t, DefaultMinTimeout, k.AnswerTimeout())
			broke := clk.Now() // right after the third answer
			tc.after(b)
			for len(ev.kinds()) == 0 {
				d, _ := clk.NextIn()
				clk.Advance(d)
			}
			require.Equal(t, tc.want, ev.kinds()[0])
			require.LessOrEqual(t, ev.ev[0].At.Sub(broke), base-DefaultMinTimeout, "the next Binding leaves the interval less its wait after the answer")
			if tc.want == FlowFailed {
				require.True(t, errors.Is(ev.ev[0].Err, context.DeadlineExceeded))
			}
		})
	}
}

// silentBinder is a STUN server that never answers: Binding returns when
// its context ends, as nat.Client does.
type silentBinder struct{ called chan struct{} }

func (b silentBinder) Binding(ctx context.Context, _ netip.AddrPort) (netip.AddrPort, error) {
	b.called <- struct{}{}
	<-ctx.Done()
	return netip.AddrPort{}, ctx.Err()
}

// A STUN keep-alive nobody answers fails the flow when its wait ends, and
// the error says so (ErrNoAnswer within the wait), not only that the
// Binder's context ended.
func TestSTUNSilentIsNoAnswer(t *testing.T) {
	t.Parallel()
	b := silentBinder{called: make(chan struct{}, 1)}
	k, clk, _, ev := newKeeper(t, KeeperConfig{Kind: STUN, Binder: b, Server: netip.MustParseAddrPort("203.0.113.2:5060"),
		Timing: Timing{Negotiated: 3 * time.Second}, WithinInterval: true})
	k.Start()
	wait := k.AnswerTimeout()
	d, ok := clk.NextIn()
	require.True(t, ok)
	done := make(chan struct{})
	go func() { defer close(done); clk.Advance(d) }() // the Binding blocks inside
	<-b.called
	clk.Advance(wait)
	<-done
	require.Equal(t, []EventKind{FlowFailed}, ev.kinds())
	require.ErrorIs(t, ev.ev[0].Err, ErrNoAnswer)
	require.ErrorIs(t, ev.ev[0].Err, context.Canceled)
	require.Contains(t, ev.ev[0].Err.Error(), "no answer within 1.2s")
}
