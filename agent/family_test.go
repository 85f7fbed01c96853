package agent

import (
	"encoding/json"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/keepalive"
)

// familyPlans are the UA-side plans of the decision table.
func familyPlans() map[string]*Plan {
	ap := netip.MustParseAddrPort
	works := Prediction{Works: true, Reason: "fine"}
	broken := Prediction{Reason: "the peer's audio would not reach it"}
	ka := KeepAlivePlan{Kind: keepalive.Options, Interval: 2 * time.Second}
	v6 := func(local, media string, from Source, k KeepAlivePlan, two Prediction) *Plan {
		return &Plan{Decision: Direct, Local: ap(local), Contact: ap(local), ContactFrom: from, KeepAlive: k, TwoWayAudio: two,
			Media: []MediaPlan{{Local: ap(media), Public: ap(media), From: from}}}
	}
	return map[string]*Plan{
		"v4": {Decision: Direct, Local: ap("192.168.1.10:5062"), Contact: ap("203.0.113.1:5062"), ContactFrom: FromSTUN, KeepAlive: ka, TwoWayAudio: works,
			Media: []MediaPlan{{Local: ap("192.168.1.10:40000"), Public: ap("203.0.113.1:40000"), From: FromSTUN}}},
		"v4 broken": {Decision: Relay, Local: ap("192.168.1.10:5062"), TwoWayAudio: broken,
			Media: []MediaPlan{{Local: ap("192.168.1.10:40000"), Public: ap("192.168.1.10:40000"), From: FromLocal}}},
		"v6 keep-alives": v6("[2001:db8:1::10]:5062", "[2001:db8:1::10]:40000", FromLocal, ka, works),
		"v6 pinhole":     v6("[2001:db8:1::10]:5062", "[2001:db8:1::10]:40000", FromMapping, KeepAlivePlan{}, works),
		"v6 open":        v6("[2a00:1450::10]:5062", "[2a00:1450::10]:40000", FromLocal, KeepAlivePlan{}, works),
		"v6 ULA":         v6("[fd00::10]:5062", "[fd00::10]:40000", FromLocal, ka, works),
		"v6 NPTv6":       v6("[fd00::10]:5062", "[2001:db8:2::10]:40000", FromSTUN, ka, works),
		"v6 broken":      v6("[2001:db8:1::10]:5062", "[2001:db8:1::10]:40000", FromLocal, ka, broken),
		"v6 NAT64": {Decision: Direct, Local: ap("[2001:db8:1::10]:5062"), Contact: ap("203.0.113.1:5062"), ContactFrom: FromSTUN, KeepAlive: ka, TwoWayAudio: works,
			Media: []MediaPlan{{Local: ap("[2001:db8:1::10]:40000"), Public: ap("203.0.113.1:40000"), From: FromSTUN}}},
	}
}

// TestChooseFamily is the decision table of the per-call family choice.
func TestChooseFamily(t *testing.T) {
	t.Parallel()
	plans := familyPlans()
	a := netip.MustParseAddr
	peer4, peer6 := []netip.Addr{a("198.51.100.2")}, []netip.Addr{a("2001:db8:fe::2")}
	both := []netip.Addr{a("198.51.100.2"), a("2001:db8:fe::2")}
	nat64 := netip.MustParsePrefix("64:ff9b::/96")
	for _, tc := range []struct {
		name          string
		v4, v6        string // keys of familyPlans, "" for none
		nat64         bool
		peer, target  []netip.Addr
		targetName    string // the target's name, target its DNS addresses
		proxy         []netip.Addr
		family        Family
		viaNAT64      bool
		works         bool
		assumed       bool
		reason        string // a part of the reason
		usable4, use6 bool
	}{
		{name: "dual-stack peer: IPv6 preferred", v4: "v4", v6: "v6 keep-alives", peer: peer6, family: IPv6, works: true,
			reason: "no SIP ALG touches it", usable4: true, use6: true},
		{name: "peer with both families", v4: "v4", v6: "v6 keep-alives", peer: both, family: IPv6, works: true,
			reason: "preferred over IPv4 through the NAT", usable4: true, use6: true},
		{name: "IPv4-only peer: IPv4 with the NAT fix", v4: "v4", v6: "v6 keep-alives", peer: peer4, family: IPv4, works: true,
			reason: "is IPv4-only: IPv4 with the NAT traversal of the IPv4 plan (direct; SDP names 203.0.113.1:40000 (from stun))", usable4: true, use6: true},
		{name: "pinhole", v4: "v4", v6: "v6 pinhole", peer: peer6, family: IPv6, works: true, reason: "a pinhole keeps the firewall open", usable4: true, use6: true},
		{name: "no firewall", v6: "v6 open", peer: peer6, family: IPv6, works: true, reason: "nothing filters", use6: true},
		{name: "ULA only: IPv4", v4: "v4", v6: "v6 ULA", peer: both, family: IPv4, works: true, reason: "is private, not global", usable4: true},
		{name: "NPTv6 makes it global", v4: "v4", v6: "v6 NPTv6", peer: both, family: IPv6, works: true, reason: "global address 2001:db8:2::10", usable4: true, use6: true},
		{name: "IPv6 broken: IPv4", v4: "v4", v6: "v6 broken", peer: both, family: IPv4, works: true, reason: "two-way audio over IPv6 not expected", usable4: true},
		{name: "IPv6 broken, IPv6-only peer", v4: "v4", v6: "v6 broken", peer: peer6, family: IPv6, reason: "the only family in common", usable4: true},
		{name: "IPv4 broken, IPv4-only peer", v4: "v4 broken", v6: "v6 keep-alives", peer: peer4, family: IPv4, reason: "the only family in common", use6: true},
		{name: "IPv6-only UA, IPv4 peer: NAT64", v6: "v6 NAT64", nat64: true, peer: peer4, family: IPv6, viaNAT64: true, works: true,
			reason: "through the NAT64 (IPv6-only behind the NAT64 64:ff9b::/96", use6: true},
		{name: "IPv6-only UA without NAT64, IPv4 peer", v6: "v6 keep-alives", peer: peer4, reason: "no family in common: the peer's SDP (198.51.100.2) has IPv4 only, the UA has IPv6 only", use6: true},
		{name: "IPv4-only UA, IPv6 peer", v4: "v4", peer: peer6, reason: "a relay that bridges families", usable4: true},
		{name: "NAT64 UA, IPv6 peer", v6: "v6 NAT64", nat64: true, peer: peer6, family: IPv6, reason: "needs an agent without Config.NAT64", use6: true},
		{name: "outgoing: IPv4 target", v4: "v4", v6: "v6 keep-alives", target: peer4, proxy: both, family: IPv4, works: true, assumed: true,
			reason: "the call's target (198.51.100.2) is IPv4-only", usable4: true, use6: true},
		{name: "outgoing: IPv6 target", v4: "v4", v6: "v6 keep-alives", target: peer6, proxy: both, family: IPv6, works: true, assumed: true,
			reason: "the call's target (2001:db8:fe::2) reaches IPv6", usable4: true, use6: true},
		{name: "outgoing: dual-stack proxy", v4: "v4", v6: "v6 keep-alives", proxy: both, family: IPv6, works: true, assumed: true,
			reason: "the proxy (198.51.100.2, 2001:db8:fe::2) reaches IPv6", usable4: true, use6: true},
		{name: "outgoing: IPv4 proxy", v4: "v4", v6: "v6 keep-alives", proxy: peer4, family: IPv4, works: true, assumed: true, usable4: true, use6: true},
		{name: "nothing known", v4: "v4", v6: "v6 keep-alives", family: IPv6, works: true, assumed: true, reason: "nothing (no SDP", usable4: true, use6: true},
		{name: "outgoing: a name with A records only", v4: "v4", v6: "v6 keep-alives", target: peer4, targetName: "pbx.example.net", proxy: both,
			family: IPv4, works: true, assumed: true, reason: "the call's target pbx.example.net by its DNS addresses (198.51.100.2) is IPv4-only", usable4: true, use6: true},
		{name: "outgoing: a name with AAAA records", v4: "v4", v6: "v6 keep-alives", target: both, targetName: "pbx.example.net", proxy: peer4,
			family: IPv6, works: true, assumed: true, reason: "the call's target pbx.example.net by its DNS addresses (198.51.100.2, 2001:db8:fe::2) reaches IPv6", usable4: true, use6: true},
		{name: "outgoing: a name that did not resolve", v4: "v4", v6: "v6 keep-alives", targetName: "pbx.example.net", proxy: peer4,
			family: IPv4, works: true, assumed: true, reason: "the call's target pbx.example.net has no address; the proxy (198.51.100.2) is IPv4-only", usable4: true, use6: true},
		{name: "outgoing: a DNS64's AAAA is the IPv4 host behind the NAT64", v6: "v6 NAT64", nat64: true, target: []netip.Addr{a("64:ff9b::c633:6402")}, targetName: "v4only.example.net",
			family: IPv6, viaNAT64: true, works: true, assumed: true, reason: "(64:ff9b::c633:6402 = 198.51.100.2 through the NAT64) is IPv4-only", use6: true},
		{name: "a peer's SDP through the NAT64", v6: "v6 NAT64", nat64: true, peer: []netip.Addr{a("64:ff9b::c633:6402")},
			family: IPv6, viaNAT64: true, works: true, reason: "is IPv4-only and the UA has no working IPv4", use6: true},
		{name: "SDP beats target", v4: "v4", v6: "v6 keep-alives", peer: peer4, target: peer6, family: IPv4, works: true, usable4: true, use6: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := FamilyInputs{V4: plans[tc.v4], V6: plans[tc.v6], Peer: tc.peer, Target: CallTarget{Name: tc.targetName, Addrs: tc.target}, Proxy: tc.proxy}
			if tc.nat64 {
				in.NAT64 = nat64
			}
			c := ChooseFamily(in)
			require.Equal(t, tc.family, c.Family, "%s", c)
			require.Equal(t, tc.viaNAT64, c.NAT64, "%s", c)
			require.Equal(t, tc.works, c.Works, "%s", c)
			require.Equal(t, tc.assumed, c.Assumed, "%s", c)
			require.Contains(t, c.Reason, tc.reason)
			require.Equal(t, tc.usable4, c.IPv4.Usable, "%s", c.IPv4.Reason)
			require.Equal(t, tc.use6, c.IPv6.Usable, "%s", c.IPv6.Reason)
			require.Equal(t, tc.family, ChooseFamily(in).Family, "the same inputs, the same choice")
		})
	}
}

func TestFamilyChoiceWords(t *testing.T) {
	t.Parallel()
	plans := familyPlans()
	c := ChooseFamily(FamilyInputs{V4: plans["v4"], V6: plans["v6 keep-alives"], Peer: []netip.Addr{netip.MustParseAddr("2001:db8:fe::2")}})
	require.Equal(t, "IPv6: the peer's SDP (2001:db8:fe::2) reaches IPv6 and the UA's IPv6 path works (global address 2001:db8:1::10, keep-alives every 2s hold the firewall's state): IPv6 needs no address rewriting and no SIP ALG touches it", c.String())
	b, err := json.Marshal(c)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, "IPv6", back["family"])
	require.Equal(t, true, back["works"])
	require.Equal(t, true, back["ipv4"].(map[string]any)["usable"])

	c = ChooseFamily(FamilyInputs{V6: plans["v6 NAT64"], NAT64: netip.MustParsePrefix("64:ff9b::/96"), Target: CallTarget{Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.2")}}})
	require.Contains(t, c.String(), "IPv6 through the NAT64 (peer's family assumed): ")
	require.Equal(t, "no common family: x", FamilyChoice{Reason: "x"}.String())
}

func TestPeerAddrs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want []string
	}{
		{"v=0\r\nc=IN IP6 2001:db8:fe::2\r\nm=audio 6000 RTP/AVP 0\r\n", []string{"2001:db8:fe::2"}},
		{"v=0\r\nc=IN IP4 198.51.100.2\r\nm=audio 6000 RTP/AVP 0\r\nm=video 6002 RTP/AVP 96\r\nc=IN IP6 2001:db8:fe::2\r\n", []string{"198.51.100.2", "2001:db8:fe::2"}},
		{"v=0\r\nc=IN IP4 198.51.100.2\r\nm=audio 0 RTP/AVP 0\r\n", nil},
		{"", nil},
	} {
		var got []string
		for _, a := range PeerAddrs([]byte(tc.body)) {
			got = append(got, a.String())
		}
		require.Equal(t, tc.want, got, "%q", tc.body)
	}
	require.Equal(t, Family(""), FamilyOf(netip.Addr{}))
	require.Equal(t, IPv4, FamilyOf(netip.MustParseAddr("::ffff:192.0.2.1")))
}

// TestDualStack: two agents on loopback of each family register nothing
// but start, the registration goes over IPv6 (the registrar has both
// addresses and loopback counts as not global: IPv4 here), and a
// socket of the wrong family is refused.
func TestDualStack(t *testing.T) {
	t.Parallel()
	l6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { _ = l6.Close() })
	l4 := listen(t)
	_, err = NewDualStack(Config{SIP: l6, Registrar: netip.MustParseAddrPort("127.0.0.1:5060")}, Config{})
	require.ErrorIs(t, err, ErrFamily)
	_, err = NewDualStack(Config{}, Config{})
	require.ErrorIs(t, err, ErrConfig)

	reg4, reg6 := startRegistrar(t), netip.MustParseAddrPort("[::1]:9")
	d, err := NewDualStack(Config{SIP: l4, Registrar: local(reg4.conn), Disable: STUN | PortMapping | Rport},
		Config{SIP: l6, Registrar: reg6, Disable: STUN | PortMapping | Rport})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.Nil(t, d.Plan())
	readLoop(t, d.Agent(IPv4), nil)
	readLoop(t, d.Agent(IPv6), nil)
	p, err := d.Start(t.Context())
	require.NoError(t, err)
	require.NotNil(t, p.IPv4)
	require.NotNil(t, p.IPv6)
	require.Contains(t, p.String(), "register over ")
	require.Contains(t, p.Register.IPv6.Reason, "is loopback, not global")
	require.Equal(t, IPv4, p.Register.Family, "%s", p)
	require.Equal(t, IPv4, d.Choose([]byte("v=0\r\nc=IN IP4 127.0.0.2\r\nm=audio 6000 RTP/AVP 0\r\n"), CallTarget{}).Family)
	require.NotNil(t, d.Plan().IPv6)
	require.Nil(t, d.Agent(""))
	b, err := json.Marshal(p)
	require.NoError(t, err)
	require.Contains(t, string(b), `"register":{"family":"IPv4"`)
}
