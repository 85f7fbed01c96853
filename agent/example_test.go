package agent_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/nat"
)

// A UA's SIP stack wires the agent into its read loops, starts it, and
// writes the plan's Contact; events tell it when to register again.
func Example() {
	sip, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 168, 1, 10), Port: 5060})
	rtp, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 168, 1, 10), Port: 40000})
	reregister := make(chan netip.AddrPort, 1)
	a, err := agent.New(agent.Config{
		SIP: sip, Media: []net.PacketConn{rtp},
		STUN:      []netip.AddrPort{netip.MustParseAddrPort("203.0.113.2:3478")},
		Registrar: netip.MustParseAddrPort("203.0.113.2:5060"),
		OnEvent: func(e agent.Event) {
			if e.Kind == agent.PublicAddressChanged {
				reregister <- e.Address
			}
		},
	})
	if err != nil {
		return
	}
	defer a.Close()
	go func() { // the SIP stack's read loop: the agent first
		buf := make([]byte, 65535)
		for {
			n, from, err := sip.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if a.HandlePacket(buf[:n], from) {
				continue
			}
			// ... the stack's own SIP handling
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plan, err := a.Start(ctx)
	if err != nil {
		return
	}
	fmt.Println("REGISTER with Contact", plan.Contact)
	fmt.Println(plan.IncomingCalls)
}

// Decide is the agent's decision without I/O: here for an
// endpoint-independent NAT whose binding lifetime an RFC 3489 server could
// not measure.
func ExampleDecide() {
	local := netip.MustParseAddrPort("192.168.1.10:5060")
	res := &nat.Result{Public: netip.MustParseAddrPort("203.0.113.1:5060"), Method: nat.MethodRFC3489,
		Mapping: nat.EndpointIndependent, Filtering: nat.AddressAndPortDependent}
	p := agent.Decide(agent.Observations{
		Local: local, STUNServers: true, NAT: res, LifetimeAsked: 30 * time.Second,
		Choice: discovery.Reconcile(discovery.Observations{Local: local, STUN: res.Public}),
		Media: []agent.MediaPlan{{Local: netip.MustParseAddrPort("192.168.1.10:40000"),
			Public: netip.MustParseAddrPort("203.0.113.1:40000"), From: agent.FromSTUN}},
	})
	fmt.Println(p.Decision, p.Contact, p.ContactFrom)
	fmt.Println(p.KeepAlive.Kind, p.KeepAlive.Interval, "assumed:", p.KeepAlive.Assumed)
	fmt.Println("incoming calls:", p.IncomingCalls.Works, "assumed:", p.IncomingCalls.Assumed)
	fmt.Println("two-way audio:", p.TwoWayAudio.Works)
	// Output:
	// direct 203.0.113.1:5060 stun
	// options 25s assumed: true
	// incoming calls: true assumed: true
	// two-way audio: true
}

// ChooseFamily picks the family of each call of a dual-stack UA behind an
// IPv4 NAT and an IPv6 firewall: IPv6 to a peer whose SDP has IPv6, IPv4
// with the NAT traversal to an IPv4-only peer.
func ExampleChooseFamily() {
	ap := netip.MustParseAddrPort
	works := agent.Prediction{Works: true}
	v4 := &agent.Plan{Decision: agent.Direct, TwoWayAudio: works,
		Media: []agent.MediaPlan{{Local: ap("192.168.1.10:40000"), Public: ap("203.0.113.1:40000"), From: agent.FromSTUN}}}
	v6 := &agent.Plan{Decision: agent.Direct, TwoWayAudio: works, Local: ap("[2001:db8:1::10]:5062"),
		KeepAlive: agent.KeepAlivePlan{Kind: keepalive.Options, Interval: 2 * time.Second},
		Media:     []agent.MediaPlan{{Local: ap("[2001:db8:1::10]:40000"), Public: ap("[2001:db8:1::10]:40000"), From: agent.FromLocal}}}
	for _, offer := range []string{
		"v=0\r\nc=IN IP6 2001:db8:fe::2\r\nm=audio 6000 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP4 198.51.100.2\r\nm=audio 6000 RTP/AVP 0\r\n",
	} {
		c := agent.ChooseFamily(agent.FamilyInputs{V4: v4, V6: v6, Peer: agent.PeerAddrs([]byte(offer))})
		fmt.Println(c.Family, c.Works)
	}
	// Output:
	// IPv6 true
	// IPv4 true
}
