package main

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/stretchr/testify/require"
)

// TestLabSipgoCall: sipgo with the agent registers to kamailio (digest)
// through eim-apdf (STUN), and through apdm with miniupnpd (a port
// mapping); it idles past the router's 5 s binding timeout, only the
// agent's keep-alives holding the flow; then sipp calls it through
// kamailio and RTP flows both ways.
func TestLabSipgoCall(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver", "miniupnpd", "nft")
	for _, tc := range []struct {
		kind     netlab.Kind
		upnp     bool
		decision agent.Decision
	}{
		{netlab.EIMAPDF, false, agent.Direct},
		{netlab.APDM, true, agent.ViaPortMapping},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: tc.kind, UPnP: tc.upnp, Timeout: 5 * time.Second, KamailioAuth: true, Coturn: true})
			client := lab.Truth().Client
			sip := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(client, 5062))
			rtp := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(client, 40000))
			var out netlab.Output
			p, err := NewPhone(sip, rtp, Config{
				Registrar: netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort), User: "alice", Password: netlab.KamailioPassword,
				STUN: []netip.AddrPort{netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)}, LifetimeMax: 12 * time.Second,
				Gateway: netlab.RouterLAN, DialContext: lab.DialContext(netlab.LAN), ListenPacket: lab.ListenPacket(netlab.LAN), Out: &out,
			})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			defer func() {
				cancel()
				require.NoError(t, <-done)
				t.Logf("the phone said:\n%s", out.String())
			}()
			select {
			case <-p.Registered():
			case err := <-done:
				t.Fatalf("stopped before registering: %v\n%s", err, out.String())
			case <-time.After(45 * time.Second):
				t.Fatalf("not registered after 45 s:\n%s", out.String())
			}
			plan := p.Plan()
			require.Equal(t, tc.decision, plan.Decision, plan.String())
			require.True(t, plan.TwoWayAudio.Works, plan.String())

			time.Sleep(6 * time.Second) // idle past the 5 s binding timeout: only the agent's keep-alives hold it

			rtpOut, err := lab.SippCall("alice", netlab.Peer, netlab.Server1)
			require.NoError(t, err, out.String())
			require.EqualValues(t, 1, p.Calls.Load())
			require.EqualValues(t, 1, p.Ended.Load())
			require.GreaterOrEqual(t, p.RTPIn.Load(), int64(50), "the caller's audio reached the phone")
			require.GreaterOrEqual(t, rtpOut, int64(50), "the phone's audio reached the caller")
		})
	}
}
