package outbound

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/sipmsg"
	"github.com/stretchr/testify/require"
)

// Lab numbers: the NAT forgets an idle TCP connection (and a UDP binding)
// after labNATTimeout; kamailio asks for keep-alives every labFlowTimer.
const (
	labNATTimeout = 5 * time.Second
	labFlowTimer  = 3 * time.Second
	labPong       = 3 * time.Second // MeasureStreamLifetime's wait for a probe's pong
	labReboots    = 3               // router reboots per flow, at whatever moment of the keep-alive cycle
)

var labRecovery = keepalive.Recovery{BaseAllFailed: time.Second, BaseSomeOK: 3 * time.Second, Max: 8 * time.Second}

// labDial dials from the LAN without kernel TCP keep-alives: only the
// flow's own keep-alives may keep the NAT's state.
func labDial(lab *netlab.Lab) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = lab.Do(netlab.LAN, func() (err error) {
			d := net.Dialer{KeepAlive: -1}
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// answerer answers every request the edge sends over the flow with 200
// and reports its Call-ID.
type answerer struct {
	ch chan string
}

func newAnswerer() *answerer { return &answerer{ch: make(chan string, 16)} }

func (a *answerer) onMessage(f *Flow, b []byte) {
	var m sipmsg.Message
	if m.Parse(b) != nil || !m.IsRequest() {
		return
	}
	resp, err := sipmsg.AppendResponse(nil, &m, 200, "OK", "ua", "")
	if err == nil {
		_ = f.Send(resp)
	}
	cid, _ := m.Get(sipmsg.HdrCallID)
	a.ch <- string(cid)
}

// caller reaches alice through kamailio from the WAN peer: an OPTIONS to
// her AoR, which kamailio relays over the flow she registered.
func reach(t *testing.T, lab *netlab.Lab, a *answerer, callID string) bool {
	t.Helper()
	conn := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Peer, 0))
	defer conn.Close()
	local := netip.MustParseAddrPort(conn.LocalAddr().String())
	req := fmt.Sprintf("OPTIONS sip:alice@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:bob@%s>;tag=b\r\nTo: <sip:alice@%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		netlab.Server1, local, callID, netlab.Peer, netlab.Server1, callID)
	_, err := conn.WriteToUDPAddrPort([]byte(req), netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort))
	require.NoError(t, err)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case cid := <-a.ch:
			if cid == callID {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// labRegister registers alice over f with kamailio.
func labRegister(regID int) func(ctx context.Context, f *Flow) ([]byte, error) {
	return registerAt(regID, netlab.Server1.String())
}

func labServer(tr sipmsg.Transport) netip.AddrPort {
	if tr == sipmsg.TLS {
		return netip.AddrPortFrom(netlab.Server1, netlab.KamailioTLSPort)
	}
	return netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort)
}

// Through a NAT that forgets idle TCP connections and UDP bindings after
// 5 s, a UA keeps an RFC 5626 flow to kamailio (registrar with outbound,
// Flow-Timer 3 s) over UDP, TCP and TLS: it registers, idles past twice
// the NAT's timeout, and is reached. Then the router reboots (conntrack
// flush), labReboots times: each time the flow fails on its next
// keep-alive (within one keep-alive interval), a new flow registers, and
// the UA is reached again. The times are logged (README).
func TestLabFlowThroughNAT(t *testing.T) {
	t.Parallel()
	for _, tr := range []sipmsg.Transport{sipmsg.UDP, sipmsg.TCP, sipmsg.TLS} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: labNATTimeout, TCPTimeout: labNATTimeout,
				KamailioFlowTimer: labFlowTimer, KamailioTLS: tr == sipmsg.TLS})
			a := newAnswerer()
			ev := newEvents()
			f := runFlow(t, FlowConfig{
				Transport: tr, Server: labServer(tr), ServerName: netlab.KamailioTLSName, RootCAs: lab.Certs().Roots,
				Dial: labDial(lab), Register: labRegister(1), OnMessage: a.onMessage, OnEvent: ev.on,
				Recovery: labRecovery,
			})
			reg := ev.wait(t, Registered)
			require.True(t, reg.Outbound, "kamailio answered Require: outbound")
			require.Equal(t, labFlowTimer, reg.FlowTimer)
			require.Equal(t, labFlowTimer, f.KeepaliveInterval())

			idleUntil := time.Now().Add(2*labNATTimeout + time.Second)
			for time.Now().Before(idleUntil) { // poll: the flow must not fail while idle
				select {
				case e := <-ev.ch:
					require.NotEqual(t, FlowFailed, e.Kind, "flow failed while idle: %v", e)
				case <-time.After(time.Until(idleUntil)):
				}
			}
			require.True(t, reach(t, lab, a, "idle-"+tr.String()), "reached after idling past the NAT timeout")

			var detected, again []time.Duration
			for i := range labReboots {
				if tr == sipmsg.UDP {
					// the rebooted router must not hand out the same port again,
					// or the UDP flow simply lives on (EIM with port preservation)
					lo := uint16(40000 + 1000*i)
					lab.SetNATPortRange(lo, lo+100)
				}
				wait := f.PongTimeout()
				flushed := time.Now()
				lab.FlushConntrack()
				failed := ev.wait(t, FlowFailed)
				re := ev.wait(t, Registered)
				require.True(t, reach(t, lab, a, fmt.Sprintf("after-reboot-%d-%s", i, tr)), "reached after the router rebooted")
				detected = append(detected, failed.At.Sub(flushed).Round(10*time.Millisecond))
				again = append(again, re.At.Sub(flushed).Round(10*time.Millisecond))
				t.Logf("%s: router reboot %d detected after %v (keep-alive interval %v, pong wait %v): %v; registered again after %v",
					tr, i+1, detected[i], f.KeepaliveInterval(), wait, failed.Err, again[i])
			}
			t.Logf("%s: %d router reboots detected after %v, registered again after %v (interval %v)", tr, labReboots, detected, again, labFlowTimer)
		})
	}
}

// A TLS flow to a server whose certificate does not carry the name asked
// for fails with a CertificateError and backs off.
func TestLabTLSBadName(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, KamailioTLS: true})
	ev := newEvents()
	runFlow(t, FlowConfig{
		Transport: sipmsg.TLS, Server: labServer(sipmsg.TLS), ServerName: "wrong.example", RootCAs: lab.Certs().Roots,
		Dial: labDial(lab), Register: labRegister(1), OnEvent: ev.on, Recovery: labRecovery,
	})
	r := ev.wait(t, Retrying)
	var ce *CertificateError
	require.ErrorAs(t, r.Err, &ce)
	t.Logf("%v", r.Err)
}

// A connection killed on the server side (a reset), over TCP and TLS, is
// noticed at once and the UA registers a new flow.
func TestLabKilledConnection(t *testing.T) {
	t.Parallel()
	for _, tr := range []sipmsg.Transport{sipmsg.TCP, sipmsg.TLS} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, TCPTimeout: labNATTimeout, KamailioFlowTimer: labFlowTimer,
				KamailioTLS: tr == sipmsg.TLS})
			a := newAnswerer()
			ev := newEvents()
			runFlow(t, FlowConfig{
				Transport: tr, Server: labServer(tr), ServerName: netlab.KamailioTLSName, RootCAs: lab.Certs().Roots,
				Dial: labDial(lab), Register: labRegister(1), OnMessage: a.onMessage, OnEvent: ev.on, Recovery: labRecovery,
			})
			ev.wait(t, Registered)
			killed := time.Now()
			out, err := lab.Command(netlab.WAN, "ss", "-K", "-t", "dst", netlab.Public.String()).CombinedOutput()
			if err != nil {
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee, "ss -K: %s", out)
			}
			failed := ev.wait(t, FlowFailed)
			re := ev.wait(t, Registered)
			require.True(t, re.Reformed)
			require.True(t, reach(t, lab, a, "after-kill-"+tr.String()))
			t.Logf("%s: killed connection detected after %v (%v); registered again after %v", tr,
				failed.At.Sub(killed).Round(10*time.Millisecond), failed.Err, re.At.Sub(killed).Round(10*time.Millisecond))
		})
	}
}

// The stream lifetime probe bounds the router's TCP timeout (5 s) between
// the last probe that still got a pong and the first that did not.
func TestLabStreamLifetime(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, TCPTimeout: labNATTimeout, Kamailio: true})
	r, err := MeasureStreamLifetime(context.Background(), FlowConfig{Transport: sipmsg.TCP, Server: labServer(sipmsg.TCP),
		Dial: labDial(lab), PongTimeout: labPong}, 8*time.Second, 4)
	require.NoError(t, err)
	t.Logf("TCP lifetime of the lab NAT (truth %v): %+v", lab.Truth().TCPTimeout, r)
	require.LessOrEqual(t, r.Lower, lab.Truth().TCPTimeout)
	require.Greater(t, r.Upper, lab.Truth().TCPTimeout-time.Second)
	require.NotZero(t, r.Upper)
}

// edgeDown makes kamailio's TCP port refuse connections (a reset for every
// packet to it), as an edge that is down; the returned func brings it back.
func edgeDown(t *testing.T, lab *netlab.Lab) func() {
	t.Helper()
	nft := func(args ...string) {
		t.Helper()
		out, err := lab.Command(netlab.WAN, "nft", args...).CombinedOutput()
		require.NoError(t, err, "nft %v: %s", args, out)
	}
	nft("add", "table", "inet", "edgedown")
	nft("add", "chain", "inet", "edgedown", "in", "{ type filter hook input priority 0; }")
	nft("add", "rule", "inet", "edgedown", "in", "tcp", "dport", fmt.Sprint(netlab.KamailioPort), "reject", "with", "tcp", "reset")
	return func() { nft("delete", "table", "inet", "edgedown") }
}

// The RFC 5626 §4.5 backoff, whole, in the testbed: the edge (kamailio over
// TCP) goes down under a registered flow and stays down across four
// attempts to form the flow again; each waits a random 50-100 % of
// min(Max, base·2^failures) (bases shortened to 0.25 s, at most 4 s), the
// next attempt comes no earlier than that, and once the edge is back the
// flow registers at the next attempt and the UA is reached. The sequence
// and the time from the edge's return to registration are logged.
func TestLabBackoff(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "kamailio", "nft")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, TCPTimeout: labNATTimeout, KamailioFlowTimer: labFlowTimer})
	recovery := keepalive.Recovery{BaseAllFailed: 250 * time.Millisecond, BaseSomeOK: 750 * time.Millisecond, Max: 4 * time.Second}
	a := newAnswerer()
	ev := newEvents()
	runFlow(t, FlowConfig{
		Transport: sipmsg.TCP, Server: labServer(sipmsg.TCP), Dial: labDial(lab), Register: labRegister(1),
		OnMessage: a.onMessage, OnEvent: ev.on, Recovery: recovery,
	})
	ev.wait(t, Registered)
	up := edgeDown(t, lab)
	down := time.Now()
	failed := ev.wait(t, FlowFailed)
	t.Logf("edge down: flow failed after %v: %v", failed.At.Sub(down).Round(10*time.Millisecond), failed.Err)
	const retries = 4
	var seq []string
	prev := failed.At
	var last Event
	for i := 1; i <= retries; i++ {
		r := ev.wait(t, Retrying)
		require.Equal(t, i, r.Failures)
		require.True(t, r.AllFailed, "a flow alone: the all-failed base")
		ceiling := recovery.Ceiling(i, true)
		require.GreaterOrEqual(t, r.Wait, ceiling/2, "retry %d", i)
		require.LessOrEqual(t, r.Wait, ceiling, "retry %d", i)
		if i > 1 {
			require.GreaterOrEqual(t, r.At.Sub(prev), last.Wait, "attempt %d came before its backoff ended", i)
		}
		seq = append(seq, fmt.Sprintf("attempt %d failed %v after the previous one, next in %v (ceiling %v)",
			i, r.At.Sub(prev).Round(10*time.Millisecond), r.Wait.Round(10*time.Millisecond), ceiling))
		prev, last = r.At, r
	}
	up()
	back := time.Now()
	re := ev.wait(t, Registered)
	require.GreaterOrEqual(t, re.At.Sub(last.At), last.Wait, "registered at the attempt after the last backoff")
	require.True(t, reach(t, lab, a, "after-backoff"), "reached once the edge is back")
	for _, s := range seq {
		t.Log(s)
	}
	t.Logf("edge back: registered %v later (the pending backoff was %v, %v of it left)", re.At.Sub(back).Round(10*time.Millisecond),
		last.Wait.Round(10*time.Millisecond), (last.Wait - back.Sub(last.At)).Round(10*time.Millisecond))
}
