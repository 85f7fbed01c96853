package main

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/sipmsg"
	"github.com/stretchr/testify/require"
)

// transportCases: every NAT kind over TCP (media through the lab's TURN
// relay where nothing direct works: over UDP, or over TCP where UDP is
// blocked); TLS on eim-apdf, apdm with a port mapping, behind CGNAT, and
// where UDP is blocked (the relay reached over TLS too).
func transportCases() []matrixCase {
	var cs []matrixCase
	for _, k := range []netlab.Kind{netlab.EIMEIF, netlab.EIMADF, netlab.EIMAPDF, netlab.ADMAPDF, netlab.APDM, netlab.None, netlab.Blocked} {
		cs = append(cs, matrixCase{caller: "sipp", kind: k, transport: sipmsg.TCP})
	}
	return append(cs,
		matrixCase{caller: "sipp", kind: netlab.EIMAPDF, transport: sipmsg.TLS},
		matrixCase{caller: "sipp", kind: netlab.APDM, upnp: true, transport: sipmsg.TLS},
		matrixCase{caller: "sipp", kind: netlab.EIMAPDF, cgnat: true, transport: sipmsg.TLS},
		matrixCase{caller: "sipp", kind: netlab.Blocked, transport: sipmsg.TLS},
	)
}

// TestMatrixTransport is the matrix's transport column: the softphone's SIP
// runs over TCP or TLS to kamailio (digest auth, RFC 5626 outbound with a
// 3 s Flow-Timer, TLS with a certificate from the lab's throw-away CA)
// through a router that forgets idle TCP connections and UDP bindings
// after 5 s; it registers, idles past both timeouts, sipp calls it through
// kamailio (which sends the INVITE over the phone's own connection), and
// RTP flows both ways wherever the NAT allows it for media.
func TestMatrixTransport(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver", "miniupnpd", "nft")
	var mu sync.Mutex
	var rows []matrixRow
	t.Cleanup(func() {
		sort.Slice(rows, func(i, j int) bool { return rowKey(rows[i]) < rowKey(rows[j]) })
		var b strings.Builder
		b.WriteString("\n| transport | kind | options | strategy | registered | incoming call | RTP in | RTP out | two-way audio (said before the call) |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rows {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %d | %d | %s (%s) |\n", r.c.transport, r.c.kind, r.c.options(), r.strategy,
				yes(r.registered), yes(r.incoming), r.rtpIn, r.rtpOut, r.twoWay, r.predicted)
		}
		t.Log(b.String())
	})
	for _, c := range transportCases() {
		t.Run(c.transport.String()+"/"+string(c.kind)+"/"+c.options(), func(t *testing.T) {
			t.Parallel()
			row := runMatrixCase(t, c)
			mu.Lock()
			rows = append(rows, row)
			mu.Unlock()
		})
	}
}

// streamFor is the phone's StreamConfig for a transport case in lab.
func streamFor(lab *netlab.Lab, tr sipmsg.Transport) *StreamConfig {
	sc := &StreamConfig{Transport: tr, Server: netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort),
		Recovery: keepalive.Recovery{BaseAllFailed: time.Second, BaseSomeOK: 3 * time.Second, Max: 8 * time.Second}}
	if tr == sipmsg.TLS {
		sc.Server = netip.AddrPortFrom(netlab.Server1, netlab.KamailioTLSPort)
		sc.ServerName, sc.RootCAs = netlab.KamailioTLSName, lab.Certs().Roots
	}
	return sc
}

// Without a Flow-Timer from the registrar (kamailio without outbound), the
// phone measures how long the router keeps an idle TCP connection (5 s)
// and keeps its flow at half the lower bound: it is still reached after
// idling past the timeout.
func TestStreamLifetimeWithoutFlowTimer(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver", "nft")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: 5 * time.Second, TCPTimeout: 5 * time.Second,
		KamailioAuth: true, Coturn: true, TURN: &netlab.TURN{}})
	sc := streamFor(lab, sipmsg.TCP)
	sc.LifetimeMax = 8 * time.Second
	phone, out := startPhone(t, lab, false, sc)
	st := phone.Stats()
	require.LessOrEqual(t, st.StreamLifetime.Lower, 5*time.Second, "%+v", st.StreamLifetime)
	require.NotZero(t, st.StreamLifetime.Lower)
	// the flow's "registered" event is printed from its own goroutine,
	// after the registration startPhone waited for
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "outbound false, Flow-Timer 0s") },
		5*time.Second, 20*time.Millisecond, "%s", out)
	time.Sleep(6 * time.Second) // idle past the router's TCP timeout
	_, err := sippCall(t, lab)
	require.NoError(t, err)
	require.GreaterOrEqual(t, phone.Stats().Calls, 1)
	t.Logf("measured %+v; keep-alive every %v", st.StreamLifetime, phone.flow.KeepaliveInterval())
}

// A router reboot (conntrack flush) under a TCP or TLS flow: the phone's
// next keep-alive gets no pong (within one keep-alive interval), it forms a
// new flow and registers again, and the next call reaches it with two-way
// audio. The times are logged (README); UDP's are in
// TestReregisterOnMappingChange.
func TestStreamRecoveryAfterReboot(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver", "nft")
	for _, tr := range []sipmsg.Transport{sipmsg.TCP, sipmsg.TLS} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: 5 * time.Second, TCPTimeout: 5 * time.Second,
				KamailioAuth: true, Coturn: true, KamailioFlowTimer: 3 * time.Second, KamailioTLS: tr == sipmsg.TLS, TURN: &netlab.TURN{}})
			phone, out := startPhone(t, lab, false, streamFor(lab, tr))
			// the flow's "registered" event is printed from its own goroutine
			require.Eventually(t, func() bool { return strings.Contains(out.String(), "flow: registered") },
				5*time.Second, 20*time.Millisecond, "%s", out)
			wait := phone.flow.PongTimeout()
			flushed := time.Now()
			lab.FlushConntrack()
			failedAt, registeredAt := waitOutput(t, out, flushed, "flow: flow-failed", "flow: registered")
			t.Logf("%s: router reboot: flow failure seen after %v, registered again after %v (keep-alive interval %v, pong wait %v)",
				tr, failedAt.Round(10*time.Millisecond), registeredAt.Round(10*time.Millisecond), phone.flow.KeepaliveInterval(), wait)
			rtpOut, err := sippCall(t, lab)
			require.NoError(t, err)
			st := phone.Stats()
			require.GreaterOrEqual(t, st.RTPIn, int64(50))
			require.GreaterOrEqual(t, rtpOut, int64(50))
		})
	}
}

// A call set up before the phone's flow was formed again: baresip calls
// the phone (SIP over TCP to kamailio, Flow-Timer 3 s), and 3 s into the
// call the router reboots. The flow fails and is formed again from a new
// NAT port, so the Contact the call was set up with names a connection
// that is gone; the phone sends a re-INVITE in the dialog over the new flow
// with the new Contact (a target refresh, RFC 3261 §12.2), and baresip's
// BYE at the end of the call reaches the phone through kamailio over the
// new connection. Audio flows both ways after the reboot.
func TestCallSurvivesFlowReform(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "baresip", "kamailio", "turnserver", "nft", "conntrack")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: 5 * time.Second, TCPTimeout: 5 * time.Second,
		KamailioAuth: true, Coturn: true, KamailioFlowTimer: 3 * time.Second, TURN: &netlab.TURN{}})
	phone, out := startPhone(t, lab, false, streamFor(lab, sipmsg.TCP))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "flow: registered") },
		5*time.Second, 20*time.Millisecond, "%s", out)
	sent := countRTP(lab, "6000-6010")
	bout, done := startBaresipCall(t, lab, 12*time.Second)
	requireAudio(t, phone, out, sent, 8*time.Second, "audio before the reboot")
	flushed := time.Now()
	lab.FlushConntrack()
	failedAt, againAt := waitOutput(t, out, flushed, "flow: flow-failed", "flow: registered")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "re-INVITE (the new flow's Contact)") },
		10*time.Second, 20*time.Millisecond, "%s", out)
	refreshed := time.Since(flushed)
	require.Contains(t, out.String(), "answered 200 OK", "baresip took the new target")
	requireAudio(t, phone, out, sent, 8*time.Second, "audio after the reboot")
	require.NoError(t, <-done, "baresip: %s", bout.String())
	require.Contains(t, bout.String(), "Call established")
	st := phone.Stats()
	require.Equal(t, 1, st.TargetRefreshes)
	require.Equal(t, 1, st.Ended, "baresip's BYE reached the phone over the new flow:\n%s\n%s", out.String(), bout.String())
	t.Logf("call across a flow re-formed: flow failed %v after the reboot, registered again at %v, re-INVITE answered at %v; the BYE reached the phone",
		failedAt.Round(10*time.Millisecond), againAt.Round(10*time.Millisecond), refreshed.Round(10*time.Millisecond))
}

// waitOutput polls the phone's output after since for a new line with
// failed and then one more with again than before, and returns how long
// after since each was seen.
func waitOutput(t *testing.T, out *netlab.Output, since time.Time, failed, again string) (failedAt, againAt time.Duration) {
	t.Helper()
	before := strings.Count(out.String(), again)
	deadline := time.Now().Add(20 * time.Second)
	for againAt == 0 {
		require.True(t, time.Now().Before(deadline), "no %q after %q:\n%s", again, failed, out.String())
		s := out.String()
		if failedAt == 0 && strings.Contains(s, failed) {
			failedAt = time.Since(since)
		}
		if failedAt > 0 && strings.Count(s, again) > before {
			againAt = time.Since(since)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return failedAt, againAt
}

// Behind a router that blocks UDP (TCP masqueraded, as some carriers and
// hotel networks do) and with no TURN relay to reach over TCP (the lab runs
// none), SIP over TCP still registers and receives the call; the phone
// says that media may not flow (RTP is UDP), and why.
func TestStreamUDPBlocked(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver", "nft")
	lab := netlab.New(t, netlab.Config{Kind: netlab.Blocked, TCPTimeout: 5 * time.Second,
		KamailioAuth: true, Coturn: true, KamailioFlowTimer: 3 * time.Second})
	phone, out := startPhone(t, lab, false, streamFor(lab, sipmsg.TCP))
	require.Contains(t, out.String(), "UDP looks blocked")
	require.Contains(t, out.String(), "media may not flow")
	require.Contains(t, phone.Plan().TwoWayAudio.Reason, "over TCP failed", "%s", phone.Plan())
	time.Sleep(6 * time.Second) // idle past the router's TCP timeout
	_, err := sippCall(t, lab)
	require.NoError(t, err, "the call reaches the phone over its TCP flow")
	st := phone.Stats()
	require.GreaterOrEqual(t, st.Calls, 1)
	require.Zero(t, st.RTPIn, "no media: UDP is blocked")
}
