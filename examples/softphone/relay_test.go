package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/internal/netlab"
)

// TestRelayedCallSurvivesReboot: behind a symmetric NAT the phone's media
// goes through the lab's TURN relay; 3 s into a 12 s call from baresip the
// router reboots (conntrack flush, and it picks new ports). The relay's
// keep-alive sees its flow move, the allocation follows it with its
// mobility ticket (RFC 8016, same relayed address: no re-INVITE), and audio
// flows both ways again. The log says within how long.
func TestRelayedCallSurvivesReboot(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "baresip", "kamailio", "turnserver", "nft", "conntrack")
	lab := netlab.New(t, netlab.Config{Kind: netlab.APDM, Timeout: 5 * time.Second, KamailioAuth: true, Coturn: true,
		TURN: &netlab.TURN{Mobility: true}})
	phone, out := startPhone(t, lab, false)
	plan := phone.Plan()
	require.Equal(t, agent.Relay, plan.Decision, "%s", plan)
	relayed := plan.Media[0].Public

	sent := countRTP(lab, "6000-6010") // what reaches baresip: the phone's audio through the relay
	cmd := baresipCommand(t, lab, 12*time.Second)
	require.NoError(t, cmd.Start()) // here, so cmd.Process is set before Kill reads it
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cmd.Wait()
	}()
	requireAudio(t, phone, out, sent, 8*time.Second, "audio before the reboot")
	wait := time.NewTimer(time.Second) // a second of the call before the reboot
	<-wait.C
	lab.SetNATPortRange(20000, 20999)
	flushed := time.Now()
	lab.FlushConntrack()
	requireAudio(t, phone, out, sent, 6*time.Second, "audio after the reboot")
	took := time.Since(flushed)
	now := phone.Plan()
	require.Equal(t, relayed, now.Media[0].Public, "the same relayed address: the caller needed no new SDP")
	t.Logf("relayed call behind apdm: audio both ways again %v after the conntrack flush (25 packets each way counted)", took.Round(10*time.Millisecond))
	// The call's media is proven (TestCallSurvivesRebootUDP follows the
	// call's re-INVITE to its BYE), so baresip is stopped here.
	_ = cmd.Process.Kill()
	<-done
}
