package agent

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/stretchr/testify/require"
)

// TestLabAssumedLifetimeAdapts: with an RFC 3489 server (stund) the
// binding lifetime cannot be measured. The plan says so (keep-alive every
// 25 s, assumed; incoming calls assumed) instead of promising; behind a NAT
// that forgets after 5 s the agent then sees each keep-alive come from a
// new public port, halves the interval each time (25, 12.5, 6.25 s, and
// 3.125 s when a keep-alive still comes too late) and reports the moved
// Contact, until the binding holds. At 6.25 s it mostly does: a keep-alive
// leaves 80-100 % of the interval less its 1 s wait after the last answer,
// 4-5.25 s, mostly below the NAT's 5 s.
func TestLabAssumedLifetimeAdapts(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "kamailio", "stund", "nft")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: 5 * time.Second, Kamailio: true, Stund: true})
	truth := lab.Truth()
	sip := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(truth.Client, 5062))
	var mu sync.Mutex
	var events []Event
	a, err := New(Config{SIP: sip, Registrar: netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort),
		STUN: []netip.AddrPort{netip.AddrPortFrom(netlab.Server1, netlab.StundPort)}, LifetimeMax: 12 * time.Second,
		Disable: PortMapping, OnEvent: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	require.NoError(t, err)
	defer a.Close()
	readLoop(t, a, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	p, err := a.Start(ctx)
	require.NoError(t, err)
	t.Logf("plan:\n%s", p)
	require.Equal(t, "rfc3489", string(p.NAT.Method))
	require.True(t, p.KeepAlive.Assumed, p.KeepAlive.Reason)
	require.Contains(t, p.KeepAlive.Reason, "cannot measure it")
	require.Equal(t, 25*time.Second, p.KeepAlive.Interval)
	require.True(t, p.IncomingCalls.Assumed, "incoming calls rest on the assumed lifetime: %s", p.IncomingCalls.Reason)

	// A binding the NAT re-creates gets a new port from here on (a NAT
	// that preserves the port re-creates the same address, which no
	// address comparison can notice). The agent learns the flow's public
	// address from the registrar (as a REGISTER answer would), then adapts
	// on its own.
	lab.SetNATPortRange(50000, 50100)
	a.learn(p.Contact, "the REGISTER answer")
	deadline := time.Now().Add(90 * time.Second)
	for a.Plan().KeepAlive.Interval > 25*time.Second/4 {
		require.True(t, time.Now().Before(deadline), "the interval did not adapt: %s", a.Plan().KeepAlive.Reason)
		time.Sleep(200 * time.Millisecond)
	}
	mu.Lock()
	var shortened, moved int
	for _, e := range events {
		switch e.Kind {
		case KeepAliveShortened:
			shortened++
		case PublicAddressChanged:
			moved++
		}
	}
	mu.Unlock()
	require.GreaterOrEqual(t, shortened, 2, "25 s -> 12.5 s -> 6.25 s")
	require.GreaterOrEqual(t, moved, 1, "each move is a new Contact to register")

	// Soon the binding holds: three keep-alives in a row find the flow
	// where it was (at 6.25 s, or at 3.125 s after one more move).
	contact, seen, held := a.Contact(), a.KeepAlives(), 0
	for held < 3 {
		require.True(t, time.Now().Before(deadline.Add(30*time.Second)), "the binding never held: %s", a.Plan().KeepAlive.Reason)
		time.Sleep(200 * time.Millisecond)
		if n := a.KeepAlives(); n > seen {
			seen = n
			if c := a.Contact(); c == contact {
				held++
			} else {
				contact, held = c, 0
			}
		}
	}
	t.Logf("the binding holds at a keep-alive interval of %v", a.Plan().KeepAlive.Interval)
	require.GreaterOrEqual(t, a.Plan().KeepAlive.Interval, 25*time.Second/8, "halved no further than the 5 s binding needs")
}
