package main

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/rtpengine/sipedge"
	"github.com/sipnat/sipnat/sipmsg"
)

// TestRelayUnavailable: with an rtpengine that does not answer, or answers
// malformed bencode, a NATed caller's INVITE still goes upstream at once
// (signalling only, its private SDP address rewritten to the public one),
// the relay counts the failure, and no goroutine is left behind.
func TestRelayUnavailable(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, tc := range []struct {
		name  string
		reply string // "": silence
	}{
		{"down", ""},
		{"malformed bencode", "d6:result2:ok3:sdp99:v=0e"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := fakeNG(t, func(string) string { return tc.reply })
			ctl, err := net.ListenPacket("udp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ctl.Close()
			client := rtpengine.NewClient(ctl, rtpengine.ClientConfig{RTO: 200 * time.Millisecond, Tries: 2}) // replies come well within it, even on a loaded machine
			defer client.Close()
			set, err := rtpengine.NewSet(rtpengine.SetConfig{Client: client, Instances: []netip.AddrPort{addr}})
			require.NoError(t, err)
			self := netip.MustParseAddrPort("203.0.113.3:5060")
			relay, err := sipedge.New(sipedge.Config{Set: set, Self: self})
			require.NoError(t, err)
			sip, err := net.ListenPacket("udp", "127.0.0.1:0")
			require.NoError(t, err)
			defer sip.Close()
			up := netip.MustParseAddrPort("203.0.113.2:5060")
			p, err := NewProxy(Config{Conn: sip, Self: self, Upstream: up, Relay: relay})
			require.NoError(t, err)

			sdp := "v=0\r\no=alice 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
			invite := "INVITE sip:bob@203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\n" +
				"From: <sip:alice@203.0.113.2>;tag=a\r\nTo: <sip:bob@203.0.113.2>\r\nCall-ID: down-1\r\nCSeq: 1 INVITE\r\n" +
				"Contact: <sip:alice@192.168.1.10:5070>\r\nContent-Type: application/sdp\r\nContent-Length: " +
				strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var m sipmsg.Message
			out, dst, err := p.Handle(ctx, nil, &m, []byte(invite), netip.MustParseAddrPort("203.0.113.1:40000"))
			require.NoError(t, err, "the INVITE is forwarded")
			require.NoError(t, ctx.Err(), "bounded by the client's retransmissions, not the context")
			require.Equal(t, up, dst)
			require.Contains(t, string(out), "c=IN IP4 203.0.113.1\r\n", "signalling only: the private address rewritten")
			require.Contains(t, string(out), "Record-Route: <sip:203.0.113.3:5060;lr;nat=yes>")
			require.NotContains(t, string(out), "rtpengine=offer", "no offer mark in the Via")
			require.Equal(t, uint64(1), relay.Stats().Failed)
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines leaked")
}
