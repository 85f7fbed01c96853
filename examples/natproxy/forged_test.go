package main

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/rtpengine/sipedge"
	"github.com/sipnat/sipnat/sipmsg"
)

// fakeNG is an rtpengine that hands every command to cmds and answers
// what reply returns for it ("": nothing).
func fakeNG(t *testing.T, reply func(cmd string) string) (netip.AddrPort, chan string) {
	t.Helper()
	ng, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	cmds := make(chan string, 16)
	served := make(chan struct{})
	go func() {
		defer close(served)
		buf := make([]byte, 65535)
		for {
			n, from, err := ng.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			sp := strings.IndexByte(string(buf[:n]), ' ')
			cmd := string(buf[sp+1 : n])
			select {
			case cmds <- cmd:
			default:
			}
			if r := reply(cmd); r != "" {
				_, _ = ng.WriteToUDPAddrPort(append(buf[:sp+1:sp+1], r...), from)
			}
		}
	}()
	t.Cleanup(func() { ng.Close(); <-served })
	return ng.LocalAddr().(*net.UDPAddr).AddrPort(), cmds
}

const relayedSDP = "v=0\r\nc=IN IP4 203.0.113.3\r\nm=audio 30000 RTP/AVP 0\r\n"

// relaySDP answers every command with relayedSDP.
func relaySDP(string) string {
	return "d6:result2:ok3:sdp" + strconv.Itoa(len(relayedSDP)) + ":" + relayedSDP + "e"
}

// relayProxy is a proxy for cfg with a relay on a fake rtpengine that
// answers every command with relayedSDP (the commands go to cmds).
func relayProxy(t *testing.T, cfg Config) (*Proxy, *sipedge.Relay, chan string) {
	t.Helper()
	addr, cmds := fakeNG(t, relaySDP)
	ctl, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ctl.Close() })
	client := rtpengine.NewClient(ctl, rtpengine.ClientConfig{})
	t.Cleanup(func() { client.Close() })
	set, err := rtpengine.NewSet(rtpengine.SetConfig{Client: client, Instances: []netip.AddrPort{addr}})
	require.NoError(t, err)
	relay, err := sipedge.New(sipedge.Config{Set: set, Self: self, AltSelf: cfg.AltSelf})
	require.NoError(t, err)
	cfg.Relay = relay
	return testProxy(t, cfg), relay, cmds
}

// relayedInvite has the proxy relay a NATed caller's INVITE (Call-ID
// real-1, From tag a, from ua) and returns the Vias it forwarded: its own,
// with the signed mark, and the UA's.
func relayedInvite(ctx context.Context, t *testing.T, p *Proxy, cmds chan string) (ourVia, uaVia string) {
	t.Helper()
	sdp := "v=0\r\no=alice 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
	invite := "INVITE sip:bob@203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\n" +
		"From: <sip:alice@203.0.113.2>;tag=a\r\nTo: <sip:bob@203.0.113.2>\r\nCall-ID: real-1\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:alice@192.168.1.10:5070>\r\nContent-Type: application/sdp\r\nContent-Length: " +
		strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
	var m sipmsg.Message
	out, _, err := p.Handle(ctx, nil, &m, []byte(invite), ua)
	require.NoError(t, err)
	require.Contains(t, <-cmds, "5:offer")
	var fwd sipmsg.Message
	require.NoError(t, fwd.Parse(out))
	vias := fwd.Values(sipmsg.HdrVia)
	require.True(t, vias.Next())
	ourVia = string(vias.Span().In(out))
	require.True(t, vias.Next())
	uaVia = string(vias.Span().In(out))
	require.Contains(t, ourVia, ";rtpengine=offer-", "the mark is signed")
	return ourVia, uaVia
}

// TestForgedAnswerDropped: the proxy relays a NATed caller's INVITE and
// signs its Via mark; a 200 OK that brings that Via back is the answer,
// but a forged one (the mark without the signature, or the signed mark on
// another call) is dropped, never reaches rtpengine and is counted.
func TestForgedAnswerDropped(t *testing.T) {
	t.Parallel()
	p, relay, cmds := relayProxy(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var m sipmsg.Message
	ourVia, uaVia := relayedInvite(ctx, t, p, cmds)

	answer := "v=0\r\no=bob 1 1 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
	ok := func(via, callID string) []byte {
		return []byte("SIP/2.0 200 OK\r\nVia: " + via + "\r\nVia: " + uaVia + "\r\n" +
			"From: <sip:alice@203.0.113.2>;tag=a\r\nTo: <sip:bob@203.0.113.2>;tag=b\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n" +
			"Contact: <sip:bob@198.51.100.9>\r\nContent-Type: application/sdp\r\nContent-Length: " +
			strconv.Itoa(len(answer)) + "\r\n\r\n" + answer)
	}
	unsigned := ourVia[:strings.LastIndexByte(ourVia, '-')]
	for _, tc := range []struct {
		name string
		b    []byte
		is   error
	}{
		{"unsigned mark", ok(unsigned, "real-1"), sipedge.ErrForged},
		// the proxy's branch does not hold for another call either
		{"signed mark on another call", ok(ourVia, "victim-2"), errForeign},
	} {
		out, _, err := p.Handle(ctx, nil, &m, tc.b, up)
		require.ErrorIs(t, err, tc.is, tc.name)
		require.Empty(t, out, tc.name)
	}
	require.Empty(t, cmds, "rtpengine heard of a forged answer")
	require.Equal(t, uint64(1), relay.Stats().Forged)
	require.Equal(t, uint64(1), p.ForeignResponses())

	out, to, err := p.Handle(ctx, nil, &m, ok(ourVia, "real-1"), up)
	require.NoError(t, err)
	require.Contains(t, <-cmds, "6:answer")
	require.Contains(t, string(out), relayedSDP, "the genuine answer is relayed")
	require.Equal(t, ua, to, "back to the UA (received, rport)")
}

// TestForgedTeardown: a CANCEL from another host than the caller is
// dropped and never reaches rtpengine; a BYE from a host that is no party
// of the call is forwarded with the edge's end mark and deletes nothing
// until the far side answers it 2xx; the caller's own CANCEL deletes at
// once.
func TestForgedTeardown(t *testing.T) {
	t.Parallel()
	p, relay, cmds := relayProxy(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	relayedInvite(ctx, t, p, cmds)
	stranger := netip.MustParseAddrPort("198.51.100.66:5060")
	var m sipmsg.Message

	const cancelReq = "CANCEL sip:bob@203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\n" +
		"From: <sip:alice@203.0.113.2>;tag=a\r\nTo: <sip:bob@203.0.113.2>\r\nCall-ID: real-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
	out, dst, err := p.Handle(ctx, nil, &m, []byte(cancelReq), stranger)
	require.ErrorIs(t, err, sipedge.ErrRefused)
	require.Empty(t, out)
	require.False(t, dst.IsValid(), "not forwarded")
	require.Empty(t, cmds, "rtpengine heard of a forged CANCEL")

	bye := "BYE sip:alice@192.168.1.10:5070;alias=203.0.113.1~40000~1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.66:5060;branch=z9hG4bKf\r\n" +
		"Route: <sip:203.0.113.3:5060;lr;nat=yes>\r\nFrom: <sip:bob@203.0.113.2>;tag=b\r\nTo: <sip:alice@203.0.113.2>;tag=a\r\n" +
		"Call-ID: real-1\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n"
	out, dst, err = p.Handle(ctx, nil, &m, []byte(bye), stranger)
	require.NoError(t, err)
	require.Equal(t, up, dst, "forwarded: the far side decides")
	require.Empty(t, cmds, "rtpengine heard of an unconfirmed BYE")
	require.NoError(t, m.Parse(out))
	top, ok := m.TopVia()
	require.True(t, ok)
	byeVia := string(top.In(out))
	require.Regexp(t, ";rtpengine=end-[0-9a-f]{16}$", byeVia)
	require.Equal(t, uint64(2), relay.Stats().Refused)

	answer := func(status string) []byte {
		return []byte("SIP/2.0 " + status + "\r\nVia: " + byeVia + "\r\nVia: SIP/2.0/UDP 198.51.100.66:5060;branch=z9hG4bKf\r\n" +
			"From: <sip:bob@203.0.113.2>;tag=b\r\nTo: <sip:alice@203.0.113.2>;tag=a\r\nCall-ID: real-1\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n")
	}
	_, to, err := p.Handle(ctx, nil, &m, answer("481 Call/Transaction Does Not Exist"), up)
	require.NoError(t, err)
	require.Equal(t, stranger, to, "the far side's answer goes back")
	require.Empty(t, cmds, "a 481 deletes nothing")
	_, _, err = p.Handle(ctx, nil, &m, answer("200 OK"), up)
	require.NoError(t, err)
	require.Contains(t, <-cmds, "6:delete", "the far side ended the call")
	require.Equal(t, uint64(1), relay.Stats().Confirmed)

	// the caller's own CANCEL of its next call deletes at once
	relayedInvite(ctx, t, p, cmds)
	out, dst, err = p.Handle(ctx, nil, &m, []byte(cancelReq), ua)
	require.NoError(t, err)
	require.Equal(t, up, dst)
	require.Contains(t, string(out), "CANCEL sip:bob@203.0.113.2")
	require.Contains(t, <-cmds, "6:delete")
}

// TestTeardownSpiral: alice calls bob, both behind NAT on this proxy, so
// the INVITE, the CANCEL and the BYE pass it twice (from the UA to
// upstream, back from upstream to the other UA). Alice's CANCEL deletes the
// call's session once, on its first pass, and the second pass leaves it
// alone (the ended mark); bob, whose 200 to a second call came back to the
// proxy's Via on the INVITE's second pass (the leg mark), is a party of
// that call, and his BYE deletes at once, once; on
// a dual-stack proxy, which offers only on the INVITE's second pass, the
// relay still knows alice as the INVITE's source (the Via the proxy wrote
// on the first pass) and takes her CANCEL.
func TestTeardownSpiral(t *testing.T) {
	t.Parallel()
	for _, dual := range []bool{false, true} {
		t.Run(map[bool]string{false: "single-stack", true: "dual-stack"}[dual], func(t *testing.T) {
			t.Parallel()
			cfg := Config{}
			if dual {
				cfg.AltSelf = netip.MustParseAddrPort("[2001:db8:ff::3]:5060")
				c6, err := net.ListenPacket("udp6", "[::1]:0")
				require.NoError(t, err)
				t.Cleanup(func() { c6.Close() })
				cfg.AltConn = c6
			}
			p, relay, cmds := relayProxy(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var m sipmsg.Message
			const bob = "sip:bob@192.168.1.20:5072;alias=203.0.113.9~40002~1"
			// upstream sends out, which the proxy sent it, back to bob
			back := func(out []byte) []byte {
				line, rest, _ := strings.Cut(string(out), "\r\n")
				method, _, _ := strings.Cut(line, " ")
				return []byte(method + " " + bob + " SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bKup1\r\n" + rest)
			}
			sdp := "v=0\r\no=alice 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
			bobAt := netip.MustParseAddrPort("203.0.113.9:40002")
			// call has alice's INVITE pass the proxy twice; it returns
			// what the proxy sends bob
			call := func(callID string) []byte {
				invite := "INVITE sip:bob@203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\n" +
					"From: <sip:alice@203.0.113.2>;tag=a\r\nTo: <sip:bob@203.0.113.2>\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n" +
					"Contact: <sip:alice@192.168.1.10:5070>\r\nContent-Type: application/sdp\r\nContent-Length: " +
					strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
				out, dst, err := p.Handle(ctx, nil, &m, []byte(invite), ua)
				require.NoError(t, err)
				require.Equal(t, up, dst)
				out, dst, err = p.Handle(ctx, nil, &m, back(out), up)
				require.NoError(t, err)
				require.Equal(t, bobAt, dst, "to bob")
				require.Contains(t, nextCmd(t, cmds), "5:offer", "offered once")
				require.Contains(t, string(out), "rtpengine=", "marked on both passes")
				return out
			}

			call("spiral-1")
			cancelReq := "CANCEL sip:bob@203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\n" +
				"From: <sip:alice@203.0.113.2>;tag=a\r\nTo: <sip:bob@203.0.113.2>\r\nCall-ID: spiral-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
			out, dst, err := p.Handle(ctx, nil, &m, []byte(cancelReq), ua)
			require.NoError(t, err, "alice's CANCEL")
			require.Equal(t, up, dst)
			require.Contains(t, nextCmd(t, cmds), "6:delete")
			require.Contains(t, string(out), ";rtpengine=ended-")
			_, dst, err = p.Handle(ctx, nil, &m, back(out), up)
			require.NoError(t, err)
			require.Equal(t, bobAt, dst, "the CANCEL goes on to bob")
			require.Empty(t, cmds, "deleted once")

			// bob answers a second call and hangs up: his BYE is a party's
			toBob := call("spiral-2")
			require.NoError(t, m.Parse(toBob))
			var vias strings.Builder
			for it := m.Values(sipmsg.HdrVia); it.Next(); {
				vias.WriteString("Via: " + string(it.Bytes()) + "\r\n")
			}
			answer := "v=0\r\no=bob 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
			ok := "SIP/2.0 200 OK\r\n" + vias.String() + "From: <sip:alice@203.0.113.2>;tag=a\r\nTo: <sip:bob@203.0.113.2>;tag=b\r\n" +
				"Call-ID: spiral-2\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.168.1.20:5072>\r\nContent-Type: application/sdp\r\n" +
				"Content-Length: " + strconv.Itoa(len(answer)) + "\r\n\r\n" + answer
			out, dst, err = p.Handle(ctx, nil, &m, []byte(ok), bobAt)
			require.NoError(t, err, "bob's 200")
			require.Equal(t, up, dst)
			if dual {
				require.Contains(t, nextCmd(t, cmds), "6:answer", "answered at the hop that offered")
			}
			_, rest, _ := strings.Cut(string(out), "\r\nVia: ") // upstream takes its Via off
			_, rest, _ = strings.Cut(rest, "\r\n")
			_, dst, err = p.Handle(ctx, nil, &m, []byte("SIP/2.0 200 OK\r\n"+rest), up)
			require.NoError(t, err)
			require.Equal(t, ua, dst, "to alice")
			if !dual {
				require.Contains(t, nextCmd(t, cmds), "6:answer", "answered at the hop that offered")
			}
			bye := "BYE sip:alice@192.168.1.10:5070;alias=203.0.113.1~40000~1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5072;branch=z9hG4bKbye;rport\r\n" +
				"Route: <sip:203.0.113.3:5060;lr;nat=yes>\r\nFrom: <sip:bob@203.0.113.2>;tag=b\r\nTo: <sip:alice@203.0.113.2>;tag=a\r\n" +
				"Call-ID: spiral-2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
			out, dst, err = p.Handle(ctx, nil, &m, []byte(bye), bobAt)
			require.NoError(t, err, "bob's BYE")
			require.Equal(t, up, dst)
			require.Contains(t, nextCmd(t, cmds), "6:delete", "bob is a party: deleted at once")
			require.Contains(t, string(out), ";rtpengine=ended-")
			line, rest, _ := strings.Cut(string(out), "\r\n")
			_, dst, err = p.Handle(ctx, nil, &m, []byte(line+"\r\nVia: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bKup2\r\n"+rest), up)
			require.NoError(t, err)
			require.Equal(t, ua, dst, "the BYE goes on to alice")
			require.Empty(t, cmds, "deleted once")
			st := relay.Stats()
			require.Equal(t, [3]uint64{2, 0, 0}, [3]uint64{st.Deletes, st.Refused, st.Failed}, "%+v", st)
		})
	}
}

// nextCmd is the next command the fake rtpengine got, or a failure after
// 2 s without one.
func nextCmd(t *testing.T, cmds chan string) string {
	t.Helper()
	select {
	case c := <-cmds:
		return c
	case <-time.After(2 * time.Second):
		t.Fatal("no rtpengine command")
		return ""
	}
}
