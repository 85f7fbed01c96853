package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/rtpengine"
)

// TestLabForgedBye: behind a symmetric NAT (only the relay brings audio
// through), a host on the internet that learnt the Call-ID and the tags (as
// a sniffer would; here from rtpengine's query) sends the edge a BYE for it, with the edge's ;nat=yes Route, as soon as the call is
// answered. It is not a party the edge saw in the dialog, so the edge
// deletes nothing and forwards the BYE marked; the registrar refuses it
// (404: no Route of its own) and the audio goes on both ways through
// rtpengine until the caller's real BYE deletes the session.
func TestLabForgedBye(t *testing.T) {
	t.Parallel()
	rl := newRelayLab(t, netlab.Config{Kind: netlab.APDM}, 1, 1, false)
	ua := dumbUA{user: "alice", sip: 5070, media: 6000, edge: rl.edges[0]}
	rl.register(t, ua)
	attacker := rl.lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Peer, 0))
	t.Cleanup(func() { attacker.Close() })
	answer := make(chan string, 1)
	go func() {
		defer close(answer)
		deadline := time.Now().Add(20 * time.Second)
		for rl.relays[0].Stats().Answers == 0 { // the UA answered through the edge
			if time.Now().After(deadline) {
				return
			}
			time.Sleep(10 * time.Millisecond) // polling the relay's counters, nothing to wait on
		}
		tags := callTags(attacker, relayInstances[0].ng, "forged-1")
		if len(tags) != 2 {
			answer <- fmt.Sprintf("rtpengine's query named tags %q", tags)
			return
		}
		from := localAddr(attacker).String()
		bye := "BYE sip:alice@192.168.1.10:5070 SIP/2.0\r\nVia: SIP/2.0/UDP " + from + ";branch=z9hG4bKforged\r\n" +
			"Route: <sip:" + ua.edge.String() + ";lr;nat=yes>\r\nMax-Forwards: 70\r\nFrom: <sip:bob@198.51.100.2>;tag=" + tags[0] + "\r\n" +
			"To: <sip:alice@203.0.113.2>;tag=" + tags[1] + "\r\nCall-ID: forged-1\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n"
		if _, err := attacker.WriteToUDPAddrPort([]byte(bye), ua.edge); err != nil {
			return
		}
		buf := make([]byte, 4096)
		_ = attacker.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			n, from, err := attacker.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if from == ua.edge {
				answer <- string(buf[:n])
				return
			}
		}
	}()
	res := rl.callWith(t, ua, "forged", "uac.xml", "dumb-uas.xml")
	require.NoError(t, res.callerErr)
	require.NoError(t, res.uaErr)
	reply := <-answer
	require.True(t, strings.HasPrefix(reply, "SIP/2.0 404"), "the registrar refuses the forged BYE; the attacker got %q", reply)
	st := rl.relays[0].Stats()
	require.True(t, res.twoWay(), "RTP at the UA %d, at the caller %d; relay %+v", res.atUA, res.atCaller, st)
	require.Equal(t, [4]uint64{1, 1, 1, 0}, [4]uint64{st.Refused, st.Deletes, st.Answers, st.Confirmed}, "refused, deletes, answers, confirmed: %+v", st)
	rl.requireDeleted(t, "forged")
	t.Logf("forged BYE: RTP at the UA %d, at the caller %d; relay %+v", res.atUA, res.atCaller, st)
}

// callTags asks rtpengine at ng, over c, for the tags of a call (the keys
// of its query reply's "tags"); nil when it does not answer in a second.
func callTags(c *net.UDPConn, ng netip.AddrPort, callID string) []string {
	req := append([]byte("tags d"), rtpengine.AppendString(nil, "command")...)
	req = append(req, rtpengine.AppendString(nil, "query")...)
	req = append(req, rtpengine.AppendString(nil, "call-id")...)
	req = append(append(req, rtpengine.AppendString(nil, callID)...), 'e')
	if _, err := c.WriteToUDPAddrPort(req, ng); err != nil {
		return nil
	}
	buf := make([]byte, 65535)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil
		}
		body, ok := bytes.CutPrefix(buf[:n], []byte("tags "))
		if from != ng || !ok {
			continue
		}
		var d rtpengine.Decoder
		v, err := d.Decode(body)
		if err != nil {
			return nil
		}
		var tags []string
		for it := v.Get("tags").Iter(); it.Next(); {
			tags = append(tags, string(it.Key().Bytes()))
		}
		return tags
	}
}
