package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
)

// A call over UDP when the router reboots under it (conntrack flushed, and
// the router picks new ports): baresip calls the phone through kamailio;
// 3 s into the call the NAT forgets every binding, and the phone's SIP and
// media sockets get new public ports. The agent's next keep-alive answer
// names the new SIP address (PublicAddressChanged) and its media
// keep-alive the new media address (MediaAddressChanged); the phone sends
// a re-INVITE in the dialog with the new Contact and SDP (a target
// refresh, RFC 3261 §12.2), so baresip's media and its BYE at the end
// reach the phone again. Audio flows both ways after the reboot.
func TestCallSurvivesRebootUDP(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "baresip", "kamailio", "turnserver", "nft", "conntrack")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: 5 * time.Second, KamailioAuth: true, Coturn: true, TURN: &netlab.TURN{}})
	phone, out := startPhone(t, lab, false)
	sent := countRTP(lab, "6000-6010")
	bout, done := startBaresipCall(t, lab, 12*time.Second)
	requireAudio(t, phone, out, sent, 8*time.Second, "audio before the reboot")
	lab.SetNATPortRange(50000, 50100)
	flushed := time.Now()
	lab.FlushConntrack()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "answered 200 OK") },
		10*time.Second, 20*time.Millisecond, "no re-INVITE answered:\n%s", out)
	refreshed := time.Since(flushed)
	require.Contains(t, out.String(), "re-INVITE (the SIP socket's new public address) with Contact 203.0.113.1:50")
	requireAudio(t, phone, out, sent, 8*time.Second, "audio after the reboot")
	require.NoError(t, <-done, "baresip: %s", bout.String())
	require.Contains(t, bout.String(), "Call established")
	st := phone.Stats()
	require.GreaterOrEqual(t, st.TargetRefreshes, 1)
	require.Equal(t, 1, st.Ended, "baresip's BYE reached the phone at its new address:\n%s\n%s", out.String(), bout.String())
	t.Logf("UDP call across a router reboot: re-INVITE answered %v after the reboot (%d target refreshes); audio both ways again; the BYE reached the phone",
		refreshed.Round(10*time.Millisecond), st.TargetRefreshes)
}

// A router that forwards nothing for a while (a reboot's downtime, a dead
// uplink; its conntrack entries kept): the agent's keep-alive to the
// registrar goes unanswered and the phone hears the flow failed within one
// keep-alive interval of the outage's start, wherever in the keep-alive
// cycle it came. Once the router forwards again the flow answers, the phone
// is registered again and a call reaches it.
func TestFlowFailedOnOutage(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver", "nft")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: 5 * time.Second, KamailioAuth: true, Coturn: true})
	phone, out := startPhone(t, lab, false)
	ka := phone.Plan().KeepAlive
	regs := phone.Stats().Registers
	down := time.Now()
	lab.Outage(true)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "nat: flow-failed") },
		10*time.Second, 10*time.Millisecond, "no flow-failed:\n%s", out)
	failedAt := time.Since(down)
	lab.Outage(false)
	up := time.Now()
	require.Eventually(t, func() bool { return phone.Stats().Registers > regs }, 20*time.Second, 10*time.Millisecond,
		"not registered again after the outage:\n%s", out)
	againAt := time.Since(up)
	t.Logf("UDP: outage seen after %v (the agent's %s keep-alive every %v); registered again %v after it ended",
		failedAt.Round(10*time.Millisecond), ka.Kind, ka.Interval, againAt.Round(10*time.Millisecond))
	require.LessOrEqual(t, failedAt, ka.Interval, "the outage is seen within one keep-alive interval")
	rtpOut, err := sippCall(t, lab)
	require.NoError(t, err, "called after the outage:\n%s", out)
	require.GreaterOrEqual(t, phone.Stats().RTPIn, int64(50))
	require.GreaterOrEqual(t, rtpOut, int64(50))
}

// startBaresipCall starts baresip calling the phone for d (baresipCommand)
// and returns its output and the result of its end.
func startBaresipCall(t *testing.T, lab *netlab.Lab, d time.Duration) (*netlab.Output, <-chan error) {
	t.Helper()
	cmd := baresipCommand(t, lab, d)
	bout := &netlab.Output{}
	cmd.Stdout, cmd.Stderr = bout, bout
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return bout, done
}

// requireAudio waits up to limit until 25 more RTP packets came in to the
// phone and went out to the peer (sent counts them at the peer); what
// names the moment in the failure.
func requireAudio(t *testing.T, phone *Phone, out *netlab.Output, sent func() int64, limit time.Duration, what string) {
	t.Helper()
	in0, out0 := phone.Stats().RTPIn, sent()
	deadline := time.Now().Add(limit)
	for phone.Stats().RTPIn-in0 < 25 || sent()-out0 < 25 {
		require.True(t, time.Now().Before(deadline), "%s: RTP in %d, out %d\n%s", what, phone.Stats().RTPIn-in0, sent()-out0, out.String())
		time.Sleep(50 * time.Millisecond)
	}
}
