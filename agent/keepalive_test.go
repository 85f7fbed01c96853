package agent

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/keepalive"
)

// TestFlowFailedWithinInterval: the keep-alive to the registrar reports a
// flow that dies at the worst moment, right after an answer, within one
// keep-alive interval, exactly on the fake clock: the next keep-alive
// leaves the jittered interval less its wait after the answer, is
// retransmitted inside that wait (STUN on RFC 8489's schedule, OPTIONS
// after T1) and fails the flow when the wait ends. A lost request alone is
// no failure: its retransmission is answered inside the wait. (Before, the
// flow failed only after two unanswered keep-alives: up to two intervals
// and two 2 s waits.)
func TestFlowFailedWithinInterval(t *testing.T) {
	t.Parallel()
	const interval = 30 * time.Second
	const sends = 2 // a keep-alive's requests in its 1 s wait: at 0 and after 500 ms
	for _, tc := range []struct {
		name string
		kind keepalive.Kind
		drop int32 // keep-alive requests the registrar drops after the cut; -1: all
	}{
		{"STUN, silent", keepalive.STUN, -1},
		{"STUN, one request lost", keepalive.STUN, 1},
		{"OPTIONS, silent", keepalive.Options, -1},
		{"OPTIONS, one request lost", keepalive.Options, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := startRegistrar(t)
			sip := listen(t)
			fake := clock.NewFake(time.Unix(1000, 0))
			failed := make(chan time.Time, 4)
			a, err := New(Config{SIP: sip, Registrar: local(reg.conn), Clock: fake, Disable: PortMapping,
				OnEvent: func(e Event) {
					if e.Kind == FlowFailed {
						failed <- fake.Now()
					}
				}})
			require.NoError(t, err)
			defer a.Close()
			readLoop(t, a, nil)
			p := &Plan{Contact: local(sip), KeepAlive: KeepAlivePlan{Kind: tc.kind, Interval: interval}}
			a.mu.Lock()
			a.plan, a.started = p, true
			a.mu.Unlock()
			require.NoError(t, a.startKeepAlives(p))
			k := a.keeper
			var steps sync.WaitGroup
			defer steps.Wait()
			step := func(d time.Duration) { // a STUN Binding blocks inside Advance until answered or cut
				steps.Add(1)
				go func() { defer steps.Done(); fake.Advance(d) }()
			}
			due := func() time.Duration { // the next keep-alive, once the last one was answered
				var d time.Duration
				require.Eventually(t, func() bool {
					var ok bool
					d, ok = fake.NextIn()
					return ok && d > flowWait
				}, 5*time.Second, time.Millisecond, "no answer")
				return d
			}
			seen := func(n int32) {
				require.Eventually(t, func() bool { return reg.seen.Load() >= n }, 5*time.Second, time.Millisecond, "the registrar got no keep-alive %d", n)
			}

			last := fake.Now() // the REGISTER: the registrar heard the UA
			for i := range 3 {
				d := due()
				require.LessOrEqual(t, fake.Now().Add(d).Sub(last), interval, "the registrar hears from the UA within the interval")
				step(d)
				seen(int32(i + 1))
				last = fake.Now()
			}
			d := due()
			wait := k.AnswerTimeout()
			require.Equal(t, keepalive.DefaultMinTimeout, wait, "loopback: RFC 6298's 1 s floor")
			cut := fake.Now() // right after the third answer
			reg.drop.Store(tc.drop)
			step(d)
			for n := 1; ; n++ {
				seen(int32(3 + n))
				if tc.drop > 0 && n > int(tc.drop) {
					break // answered
				}
				next, ok := fake.NextIn()
				require.True(t, ok)
				require.LessOrEqual(t, fake.Now().Add(next).Sub(cut), d+wait, "retransmitted inside the wait")
				step(next)
				if n == sends {
					break
				}
			}
			if tc.drop < 0 {
				var at time.Time
				select {
				case at = <-failed:
				case <-time.After(5 * time.Second):
					t.Fatal("no FlowFailed")
				}
				lat := at.Sub(cut)
				require.LessOrEqual(t, lat, interval, "found within one keep-alive interval")
				require.Equal(t, d+wait, lat, "by the keep-alive's silence: sent a jittered interval less its wait after the answer")
				require.Equal(t, int32(3+sends), reg.seen.Load(), "the keep-alive and its retransmission, inside the wait")
				t.Logf("%v: silent right after an answer, found %v later (interval %v, wait %v, %d requests)", tc.kind, lat, interval, wait, sends)
				return
			}
			d = due() // answered: the next keep-alive is scheduled, no failure
			require.Greater(t, d, interval*4/5-flowWait)
			require.False(t, k.Failed())
			require.Empty(t, failed)
		})
	}
}

// TestKeepAliveFlowRejected: a registrar (an RFC 5626 edge) that answers
// the OPTIONS keep-alive with 430 Flow Failed has lost the flow: the agent
// reports FlowFailed at once, saying to register again, while the keep-alive
// itself counts as answered (the path works). A 200 reports nothing.
func TestKeepAliveFlowRejected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int32
		failed bool
	}{{200, false}, {430, true}} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			reg := startRegistrar(t)
			reg.status.Store(tc.status)
			sip := listen(t)
			fake := clock.NewFake(time.Unix(1000, 0))
			evs := make(chan Event, 4)
			a, err := New(Config{SIP: sip, Registrar: local(reg.conn), Clock: fake, Disable: PortMapping,
				OnEvent: func(e Event) { evs <- e }})
			require.NoError(t, err)
			defer a.Close()
			readLoop(t, a, nil)
			p := &Plan{Contact: local(sip), KeepAlive: KeepAlivePlan{Kind: keepalive.Options, Interval: 30 * time.Second}}
			a.mu.Lock()
			a.plan, a.started = p, true
			a.mu.Unlock()
			require.NoError(t, a.startKeepAlives(p))
			d, ok := fake.NextIn()
			require.True(t, ok)
			fake.Advance(d)
			require.Eventually(t, func() bool { // answered: the next keep-alive is scheduled
				next, ok := fake.NextIn()
				return ok && next > flowWait
			}, 5*time.Second, time.Millisecond)
			require.False(t, a.keeper.Failed(), "the path answers")
			if !tc.failed {
				require.Empty(t, evs)
				return
			}
			e := <-evs
			require.Equal(t, FlowFailed, e.Kind)
			require.Contains(t, e.Reason, "430 Flow Failed: it lost the flow; register again")
		})
	}
}
