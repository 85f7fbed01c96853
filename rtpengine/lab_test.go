package rtpengine

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
)

// labRtpengine builds a lab and starts a real rtpengine in its WAN
// namespace (ng on addr:2223, media ports 30000-30099 on addr), and returns
// a client whose socket is in the same namespace on addr.
func labRtpengine(tb testing.TB, addr netip.Addr) (*netlab.Lab, *netlab.Rtpengine, *Client) {
	netlab.RequireTools(tb, "rtpengine")
	lab := netlab.New(tb, netlab.Config{Kind: netlab.None})
	r := lab.StartRtpengine(netlab.WAN, netip.AddrPortFrom(addr, 2223), addr, 30000, 30099)
	c := NewClient(lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(addr, 0)), ClientConfig{RTO: 100 * time.Millisecond})
	tb.Cleanup(func() { c.Close() })
	return lab, r, c
}

const privateOffer = "v=0\r\no=alice 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n" +
	"m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

var (
	connRe = regexp.MustCompile(`c=IN IP4 (\S+)\r\n`)
	portRe = regexp.MustCompile(`m=audio (\d+) `)
)

func relayAddr(t *testing.T, sdp []byte) netip.AddrPort {
	t.Helper()
	c, p := connRe.FindSubmatch(sdp), portRe.FindSubmatch(sdp)
	require.NotNil(t, c, "%s", sdp)
	require.NotNil(t, p, "%s", sdp)
	port, err := strconv.Atoi(string(p[1]))
	require.NoError(t, err)
	return netip.AddrPortFrom(netip.MustParseAddr(string(c[1])), uint16(port))
}

// TestLabRtpengine: a real rtpengine (user space, no kernel module) takes an
// offer from a NATed caller (private SDP, SIP source address), an answer,
// relays RTP both ways between symmetric endpoints, counts it in query, and
// forgets the call on delete; when it is stopped, requests time out.
func TestLabRtpengine(t *testing.T) {
	t.Parallel()
	noLeak(t)
	lab, r, c := labRtpengine(t, netlab.Server1)
	ctx := context.Background()
	require.NoError(t, c.Ping(ctx, r.NG))

	// the two endpoints: alice "behind NAT" at 198.51.100.2 (her SDP says
	// 192.168.1.10), bob at 203.0.113.3
	alice := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Peer, 0))
	bob := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Server2, 0))
	bobAddr := bob.LocalAddr().(*net.UDPAddr).AddrPort()

	id, ft, tt := []byte("lab-call-1"), []byte("alice-tag"), []byte("bob-tag")
	rep, err := c.Do(ctx, r.NG, nil, &Request{Command: Offer, CallID: id, FromTag: ft, SDP: []byte(privateOffer),
		Source: netlab.Peer, Options: Options{SIPSource: true, Symmetric: true, ReplaceOrigin: true, ReplaceSessionConnection: true, ICE: ICERemove}})
	require.NoError(t, err)
	toBob := relayAddr(t, rep.SDP) // where bob sends
	require.Equal(t, netlab.Server1, toBob.Addr(), "%s", rep.SDP)
	require.Contains(t, string(rep.SDP), "o=alice 1 1 IN IP4 203.0.113.2\r\n", "origin replaced")
	require.NotContains(t, string(rep.SDP), "192.168.1.10")

	answer := fmt.Sprintf("v=0\r\no=bob 2 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n",
		bobAddr.Addr(), bobAddr.Addr(), bobAddr.Port())
	rep, err = c.Do(ctx, r.NG, rep.SDP[:0], &Request{Command: Answer, CallID: id, FromTag: ft, ToTag: tt, SDP: []byte(answer),
		Options: Options{TrustAddress: true, Symmetric: true, ReplaceOrigin: true, ReplaceSessionConnection: true}})
	require.NoError(t, err)
	toAlice := relayAddr(t, rep.SDP) // where alice sends

	// alice speaks first (symmetric: the relay learns her real address),
	// then both sides talk
	talk(t, alice, toAlice, bob, toBob)

	q, err := c.Do(ctx, r.NG, nil, &Request{Command: Query, CallID: id})
	require.NoError(t, err)
	require.GreaterOrEqual(t, q.RTP.Packets, int64(20), "%+v", q)
	require.Positive(t, q.Created)

	rep, err = c.Do(ctx, r.NG, nil, &Request{Command: Delete, CallID: id, FromTag: ft})
	require.NoError(t, err)
	require.Equal(t, "ok", rep.Result)
	_, err = c.Do(ctx, r.NG, nil, &Request{Command: Query, CallID: id})
	var er *ErrorReply
	require.ErrorAs(t, err, &er)
	require.Equal(t, "Unknown call-id", er.Reason)

	// an answer rtpengine cannot place is a clear error
	_, err = c.Do(ctx, r.NG, nil, &Request{Command: Answer, CallID: []byte("nope"), FromTag: ft, ToTag: tt, SDP: []byte(answer)})
	require.ErrorIs(t, err, ErrRejected)

	r.Proc.Stop(3 * time.Second)
	err = c.Ping(ctx, r.NG)
	require.ErrorIs(t, err, ErrTimeout, "a stopped rtpengine: %v", err)
}

// BenchmarkLabOffer: the ng round trip of an offer (a re-offer of one call,
// so rtpengine's port pool stays put) against a real rtpengine on loopback
// (127.0.0.1 of the lab's WAN namespace), side by side with the same offer through the
// generic map codec on a bare socket and with a ping (the floor:
// rtpengine's least work plus two datagrams).
func BenchmarkLabOffer(b *testing.B) {
	lab, r, c := labRtpengine(b, netip.MustParseAddr("127.0.0.1"))
	ctx := context.Background()
	req := &Request{Command: Offer, CallID: []byte("bench"), FromTag: []byte("f"), SDP: []byte(privateOffer),
		Source: netlab.Peer, Options: Options{SIPSource: true, Symmetric: true, ReplaceOrigin: true, ReplaceSessionConnection: true}}
	sdp := make([]byte, 0, 1024)
	b.Run("offer", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := c.Do(ctx, r.NG, sdp[:0], req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("offer-generic", func(b *testing.B) {
		// the same offer with the generic map codec on a bare socket
		conn := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(r.NG.Addr(), 0))
		defer conn.Close()
		b.ReportAllocs()
		buf := make([]byte, MaxMessageSize)
		var out bytes.Buffer
		for i := 0; i < b.N; i++ {
			out.Reset()
			fmt.Fprintf(&out, "g%d ", i)
			genericEncode(&out, map[string]any{"command": "offer", "call-id": "bench", "from-tag": "f", "sdp": privateOffer,
				"flags": []any{"SIP-source-address"}, "replace": []any{"origin", "session-connection"},
				"received-from": []any{"IP4", netlab.Peer.String()}})
			if _, err := conn.WriteToUDPAddrPort(out.Bytes(), r.NG); err != nil {
				b.Fatal(err)
			}
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				b.Fatal(err)
			}
			v, _, err := genericDecode(buf[bytes.IndexByte(buf[:n], ' ')+1 : n])
			if m, _ := v.(map[string]any); err != nil || m["result"] != "ok" {
				b.Fatal(err, string(buf[:n]))
			}
		}
	})
	b.Run("ping", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := c.Ping(ctx, r.NG); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// talk has alice and bob exchange RTP through the relay, alice first
// (symmetric RTP: the relay learns her real address, and a firewall in
// front of her lets the relay's packets back in), and requires at least
// 10 packets each way within 40 rounds.
func talk(t *testing.T, alice *net.UDPConn, toAlice netip.AddrPort, bob *net.UDPConn, toBob netip.AddrPort) {
	t.Helper()
	rtp := make([]byte, 172)
	rtp[0] = 0x80
	buf := make([]byte, 1500)
	recv := func(c *net.UDPConn) bool {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _, err := c.ReadFromUDPAddrPort(buf)
		return err == nil
	}
	var atAlice, atBob int
	for seq := 0; seq < 40 && (atAlice < 10 || atBob < 10); seq++ {
		rtp[3] = byte(seq)
		_, err := alice.WriteToUDPAddrPort(rtp, toAlice)
		require.NoError(t, err)
		if recv(bob) {
			atBob++
		}
		_, err = bob.WriteToUDPAddrPort(rtp, toBob)
		require.NoError(t, err)
		if recv(alice) {
			atAlice++
		}
	}
	require.GreaterOrEqual(t, atBob, 10, "alice -> relay -> bob")
	require.GreaterOrEqual(t, atAlice, 10, "bob -> relay -> alice")
}
