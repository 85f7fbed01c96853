package rtpengine

import (
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

var conn6Re = regexp.MustCompile(`c=IN IP([46]) (\S+)\r\n`)

// relayAddrAny is relayAddr for either family: the c= address and m= port
// rtpengine wrote, and the family it wrote them in.
func relayAddrAny(t *testing.T, sdp []byte) (netip.AddrPort, string) {
	t.Helper()
	c, p := conn6Re.FindSubmatch(sdp), portRe.FindSubmatch(sdp)
	require.NotNil(t, c, "%s", sdp)
	require.NotNil(t, p, "%s", sdp)
	port, err := strconv.Atoi(string(p[1]))
	require.NoError(t, err)
	return netip.AddrPortFrom(netip.MustParseAddr(string(c[2])), uint16(port)), "IP" + string(c[1])
}

// TestLabRtpengineIPv6: in the dual-stack lab rtpengine listens on both
// families (Server1 and Server1V6 as one interface), and relays a call
// whose caller is an IPv6 phone behind the lab's RFC 6092 firewall: once
// to an IPv6 peer (both legs IPv6) and once to an IPv4 peer (the
// "address family" flag bridges the families). The caller speaks first, so
// the firewall lets the relay's packets back in.
func TestLabRtpengineIPv6(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "rtpengine")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMEIF, IPv6: netlab.IPv6Firewall})
	r := lab.StartRtpengine(netlab.WAN, netip.AddrPortFrom(netlab.Server1, 2223), netlab.Server1, 30000, 30099)
	require.Equal(t, netlab.Server1V6, r.Media6)
	c := NewClient(lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Server1, 0)), ClientConfig{RTO: 100 * time.Millisecond})
	t.Cleanup(func() { c.Close() })

	for _, tc := range []struct {
		name   string
		bob    netip.Addr
		family Family // what bob speaks, for the offer; alice's is IPv6
	}{
		{"ipv6-to-ipv6", netlab.Peer6, ""},
		{"ipv6-to-ipv4", netlab.Server2, IPv4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			alice := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client6, 0))
			bob := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(tc.bob, 0))
			aliceAddr := alice.LocalAddr().(*net.UDPAddr).AddrPort()
			bobAddr := bob.LocalAddr().(*net.UDPAddr).AddrPort()
			bobIP := "IP6"
			if tc.bob.Is4() {
				bobIP = "IP4"
			}

			id, ft, tt := []byte("v6-"+tc.name), []byte("alice-tag"), []byte("bob-tag")
			offer := fmt.Sprintf("v=0\r\no=alice 1 1 IN IP6 %s\r\ns=-\r\nc=IN IP6 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n",
				aliceAddr.Addr(), aliceAddr.Addr(), aliceAddr.Port())
			rep, err := c.Do(ctx, r.NG, nil, &Request{Command: Offer, CallID: id, FromTag: ft, SDP: []byte(offer),
				Options: Options{TrustAddress: true, ReplaceOrigin: true, ReplaceSessionConnection: true, Family: tc.family}})
			require.NoError(t, err)
			toBob, fam := relayAddrAny(t, rep.SDP) // where bob sends
			require.Equal(t, bobIP, fam, "bob gets the relay in his own family: %s", rep.SDP)
			want := r.Media6
			if tc.bob.Is4() {
				want = r.Media
			}
			require.Equal(t, want, toBob.Addr(), "%s", rep.SDP)

			answer := fmt.Sprintf("v=0\r\no=bob 2 2 IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n",
				bobIP, bobAddr.Addr(), bobIP, bobAddr.Addr(), bobAddr.Port())
			afam := Family("")
			if tc.family != "" {
				afam = IPv6
			}
			rep, err = c.Do(ctx, r.NG, rep.SDP[:0], &Request{Command: Answer, CallID: id, FromTag: ft, ToTag: tt, SDP: []byte(answer),
				Options: Options{TrustAddress: true, ReplaceOrigin: true, ReplaceSessionConnection: true, Family: afam}})
			require.NoError(t, err)
			toAlice, fam := relayAddrAny(t, rep.SDP) // where alice sends: the IPv6 leg
			require.Equal(t, "IP6", fam, "%s", rep.SDP)
			require.Equal(t, r.Media6, toAlice.Addr(), "%s", rep.SDP)

			talk(t, alice, toAlice, bob, toBob) // alice is IPv6, behind the firewall

			q, err := c.Do(ctx, r.NG, nil, &Request{Command: Query, CallID: id})
			require.NoError(t, err)
			require.GreaterOrEqual(t, q.RTP.Packets, int64(20), "%+v", q)
			_, err = c.Do(ctx, r.NG, nil, &Request{Command: Delete, CallID: id, FromTag: ft})
			require.NoError(t, err)
		})
	}
}
