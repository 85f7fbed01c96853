package main

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/stretchr/testify/require"
)

// TestMatrixDualStack: a dual-stack phone behind an IPv4 NAT (eim-apdf)
// with the kernel SIP ALG and behind the router's RFC 6092 IPv6 firewall.
// The agent registers it over IPv6 (no ALG touches IPv6) and picks each
// call's media family: a peer that has IPv6 gets IPv6 media (the RTP is
// counted at the peer's IPv6 address, and the conntrack entries show the
// ALG helper on the IPv4 SIP flow only), an IPv4-only peer gets IPv4
// media with the STUN address in the SDP. Incoming and outgoing, each
// with two-way audio, after idling past the 5 s NAT and firewall timeouts.
func TestMatrixDualStack(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver", "nft", "conntrack")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: netlab.IPv6Firewall, ALG: true, Timeout: 5 * time.Second,
		KamailioAuth: true, Coturn: true})
	cfg := Config{Disable: agent.PortMapping,
		Registrar: netip.AddrPortFrom(netlab.Server1V6, netlab.KamailioPort), User: "alice", Password: netlab.KamailioPassword,
		STUN:        []netip.AddrPort{netip.AddrPortFrom(netlab.Server1V6, netlab.CoturnPort)},
		LifetimeMax: 12 * time.Second,
		DialContext: lab.DialContext(netlab.LAN), ListenPacket: lab.ListenPacket(netlab.LAN),
		Dual: &DualConfig{
			SIP:       lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client, 5062)),
			RTP:       lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client, 40000)),
			Registrar: netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort),
			STUN:      []netip.AddrPort{netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)},
		},
	}
	phone, out := startPhoneWith(t, lab, netlab.Client6, cfg)
	dp := phone.DualPlan()
	require.NotNil(t, dp)
	require.Equal(t, agent.IPv6, dp.Register.Family, "%s", dp)
	require.True(t, dp.Register.IPv4.Usable, "%s", dp)
	require.True(t, dp.Register.IPv6.Usable, "%s", dp)
	require.Equal(t, netlab.Public, dp.IPv4.Media[0].Public.Addr(), "the IPv4 media address is the NAT's: %s", dp)
	require.Equal(t, netlab.Client6, dp.IPv6.Media[0].Public.Addr(), "IPv6 media needs no rewriting: %s", dp)
	dump, err := lab.KamailioRPC("ul.dump")
	require.NoError(t, err)
	require.Contains(t, dump, "Address: sip:alice@"+netip.AddrPortFrom(netlab.Client6, 5062).String(), "registered over IPv6")

	time.Sleep(6 * time.Second) // idle past the NAT's and the firewall's 5 s UDP timeouts

	var rows []string
	t.Cleanup(func() {
		t.Log("\n| call | peer | media family | RTP in | RTP out | two-way audio |\n|---|---|---|---|---|---|\n" + strings.Join(rows, ""))
	})
	for i, c := range []struct {
		name   string
		peer   netip.Addr
		dial   bool
		family agent.Family
	}{
		{name: "incoming", peer: netlab.Peer6, family: agent.IPv6},
		{name: "incoming", peer: netlab.Peer, family: agent.IPv4},
		{name: "outgoing", peer: netlab.Peer6, dial: true, family: agent.IPv6},
		{name: "outgoing", peer: netlab.Peer, dial: true, family: agent.IPv4},
	} {
		before := phone.Stats()
		var rtpOut int64
		if c.dial {
			rtpOut, err = sippAnswerAt(t, lab, phone, c.peer)
		} else {
			registrar := netlab.Server1V6
			if c.peer.Is4() {
				registrar = netlab.Server1 // an IPv4-only caller reaches kamailio over IPv4
			}
			rtpOut, err = lab.SippCall("alice", c.peer, registrar)
		}
		st := phone.Stats()
		require.NoError(t, err, "%s call with %s: phone %+v\n%s", c.name, c.peer, st, out.String())
		require.Len(t, st.Families, i+1, "%+v", st)
		require.Equal(t, string(c.family), st.Families[i], "%s call with %s", c.name, c.peer)
		rtpIn := st.RTPIn - before.RTPIn
		twoWay := rtpIn >= 50 && rtpOut >= 50
		require.True(t, twoWay, "%s call with %s: two-way audio: RTP in %d, out %d at the peer's %s address", c.name, c.peer, rtpIn, rtpOut, c.family)
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %d | %d | %s |\n", c.name, c.peer, st.Families[i], rtpIn, rtpOut, yes(twoWay)))
	}

	// The ALG is on, and only IPv4 SIP meets it: the IPv4 agent's
	// keep-alives to kamailio carry the sip helper, the IPv6 SIP flow
	// (registration and all four calls) none.
	v4, err := lab.Command(netlab.RTR, "conntrack", "-L", "-f", "ipv4", "-p", "udp", "--dport", "5060").CombinedOutput()
	require.NoError(t, err, "%s", v4)
	require.Contains(t, string(v4), "helper=sip", "the ALG handles the IPv4 SIP flow")
	v6, err := lab.Command(netlab.RTR, "conntrack", "-L", "-f", "ipv6", "-p", "udp", "--dport", "5060").CombinedOutput()
	require.NoError(t, err, "%s", v6)
	require.Contains(t, string(v6), netlab.Client6.String(), "the IPv6 SIP flow is tracked")
	require.NotContains(t, string(v6), "helper=", "no ALG on the IPv6 SIP flow")
}
