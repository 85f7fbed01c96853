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
// new public port, halves the interval each time (25, 12.5, 6.25, 3.125 s)
// and reports the moved Contact, until the binding holds.
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
	for a.Plan().KeepAlive.Interval > 4*time.Second {
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
	require.GreaterOrEqual(t, shortened, 3, "25 s -> 12.5 s -> 6.25 s -> 3.125 s")
	require.GreaterOrEqual(t, moved, 1, "each move is a new Contact to register")

	// Below the NAT's 5 s the binding now holds: the next keep-alives find
	// the flow where it was.
	contact := a.Contact()
	start := a.KeepAlives()
	for a.KeepAlives() < start+2 {
		require.True(t, time.Now().Before(deadline.Add(15*time.Second)), "keep-alives stopped")
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, contact, a.Contact(), "the binding holds at %v", a.Plan().KeepAlive.Interval)
}
