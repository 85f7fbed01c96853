package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/rtpengine/sipedge"
	"github.com/sipnat/sipnat/sdp"
	"github.com/sipnat/sipnat/sipmsg"
)

// labUA is a hand-driven UA socket of the dual-stack proxy test.
type labUA struct {
	t    *testing.T
	conn *net.UDPConn
	self netip.AddrPort
	buf  []byte
	m    sipmsg.Message
}

func (u *labUA) send(to netip.AddrPort, msg string) {
	u.t.Helper()
	_, err := u.conn.WriteToUDPAddrPort([]byte(msg), to)
	require.NoError(u.t, err)
}

// await reads until a message that match accepts arrives (provisional
// answers and retransmissions are skipped) and returns it.
func (u *labUA) await(what string, match func(*sipmsg.Message) bool) string {
	u.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		require.NoError(u.t, u.conn.SetReadDeadline(deadline))
		n, _, err := u.conn.ReadFromUDPAddrPort(u.buf)
		require.NoError(u.t, err, "%s never arrived at %s", what, u.self)
		if u.m.Parse(u.buf[:n]) == nil && match(&u.m) {
			return string(u.buf[:n])
		}
	}
}

// register registers user at its own address through the proxy at via.
func (u *labUA) register(via netip.AddrPort, user string) {
	u.t.Helper()
	reg := "REGISTER sip:203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP " + u.self.String() + ";branch=z9hG4bK" + user + "reg;rport\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:" + user + "@203.0.113.2>;tag=" + user + "r\r\nTo: <sip:" + user + "@203.0.113.2>\r\n" +
		"Call-ID: " + user + "reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:" + user + "@" + u.self.String() + ">\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
	u.send(via, reg)
	u.await(user+"'s REGISTER answer", func(m *sipmsg.Message) bool { return m.StatusCode() == 200 })
}

// sdpOf is a one-stream audio SDP at ap.
func sdpOf(ap netip.AddrPort) string {
	fam := "IP4"
	if ap.Addr().Is6() {
		fam = "IP6"
	}
	return "v=0\r\no=- 1 1 IN " + fam + " " + ap.Addr().String() + "\r\ns=-\r\nc=IN " + fam + " " + ap.Addr().String() +
		"\r\nt=0 0\r\nm=audio " + strconv.Itoa(int(ap.Port())) + " RTP/AVP 0\r\n"
}

// headerValues are the values of header name in msg, in order, one per
// comma-separated entry.
func headerValues(msg, name string) []string {
	var out []string
	for _, line := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			for _, e := range strings.Split(v, ", ") {
				out = append(out, strings.TrimSpace(e))
			}
		}
	}
	return out
}

// TestLabNATProxyDualStack: natproxy on both families in front of an
// IPv4-only registrar. An IPv4 UA (alice) behind the NAT registers over
// IPv4 and gets the usual fix (an alias); an IPv6 UA (bob) behind the
// firewall registers over IPv6 and is left alone (its Contact is its
// source). Each calls the other, without and with rtpengine behind the
// proxy:
//   - The proxy record-routes both of its addresses where the dialog
//     crosses families, so the ACK from the caller and the BYE from the
//     callee both follow the route set across.
//   - Without a relay it says, with a warning and CrossFamily, that the
//     offer and the answer reach UAs that cannot use them.
//   - With rtpengine the relay writes each UA's SDP in its family
//     (rtpengine's "address family": IPv4 for alice, IPv6 for bob; the
//     offer is made where the proxy forwards the INVITE to the callee,
//     whose family it then knows) and RTP flows both ways.
func TestLabNATProxyDualStack(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		relay      bool
		v4Calls    bool     // alice (IPv4) calls bob (IPv6); else bob calls alice
		rrAtCallee []string // the Record-Route the callee sees
		late       bool     // a late offer: the INVITE has no SDP, the 200 offers, the ACK answers
	}{
		{"IPv6 calls IPv4", false, false, []string{rrV4NAT, rrKam, rrV4, rrV6}, false},
		{"IPv4 calls IPv6", false, true, []string{rrV6, rrV4, rrKam, rrV4NAT}, false},
		{"IPv6 calls IPv4 through rtpengine", true, false, []string{rrV4NAT, rrKam, rrV4, rrV6}, false},
		{"IPv4 calls IPv6 through rtpengine", true, true, []string{rrV6, rrV4, rrKam, rrV4NAT}, false},
		{"IPv6 calls IPv4 through rtpengine, late offer", true, false, []string{rrV4NAT, rrKam, rrV4, rrV6}, true},
		{"IPv4 calls IPv6 through rtpengine, late offer", true, true, []string{rrV6, rrV4, rrKam, rrV4NAT}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tools := []string{"kamailio", "kamcmd"}
			if c.relay {
				tools = append(tools, "rtpengine")
			}
			netlab.RequireTools(t, tools...)
			p := dualStackCall(t, c.relay, c.v4Calls, c.late, c.rrAtCallee)
			if c.relay {
				require.Zero(t, p.CrossFamily(), "the relay bridged the families")
			} else {
				require.Equal(t, uint64(2), p.CrossFamily(), "the offer and the answer each reached a UA of the other family")
			}
		})
	}
}

// The proxy's Record-Route values at its IPv4 and IPv6 addresses, with
// the mark of a dialog with a party behind NAT or without, and the
// registrar's.
const (
	rrV4    = "<sip:203.0.113.3:5060;lr>"
	rrV4NAT = "<sip:203.0.113.3:5060;lr;nat=yes>"
	rrV6    = "<sip:[2001:db8:ff::3]:5060;lr>"
	rrKam   = "<sip:203.0.113.2;lr;ftag=c1>" // the registrar's
)

// talk has both parties send 1 s of RTP to the relay address their SDP
// names, from their media sockets (symmetric RTP opens the NAT and the
// firewall for the relay), and requires each to hear the other.
func talk(t *testing.T, alice, bob *dualParty) {
	var wg sync.WaitGroup
	got := make([]int, 2)
	for i, s := range []*dualParty{alice, bob} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			pkt := append([]byte{0x80, 0}, make([]byte, 170)...)
			for range 50 {
				_, _ = s.media.WriteToUDPAddrPort(pkt, s.sendTo)
				time.Sleep(20 * time.Millisecond)
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			_ = s.media.SetReadDeadline(time.Now().Add(3 * time.Second))
			for {
				n, _, err := s.media.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if n >= 12 && buf[0]>>6 == 2 {
					got[i]++
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("RTP through rtpengine: at alice (IPv4) %d, at bob (IPv6) %d", got[0], got[1])
	require.GreaterOrEqual(t, got[0], 20, "bob's IPv6 audio reached alice over IPv4")
	require.GreaterOrEqual(t, got[1], 20, "alice's IPv4 audio reached bob over IPv6")
}

// withSDP is the end of a message's header with body as its SDP (none
// when body is empty).
func withSDP(body string) string {
	if body == "" {
		return "Content-Length: 0\r\n\r\n"
	}
	return "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// dualParty is a UA of dualStackCall.
type dualParty struct {
	ua      *labUA
	name    string
	proxy   netip.AddrPort // the proxy's address in the UA's family
	media   *net.UDPConn
	sdp     netip.AddrPort // the UA's own media address, in its SDP
	fixed   string         // its SDP's c= line as the other party gets it without a relay
	relayC  string         // the c= line of rtpengine's address in the UA's family
	via     string         // the proxy's Via towards the UA
	contact string         // its Contact as the other party gets it
	sendTo  netip.AddrPort // where its media goes: the c= and m= of the SDP it received
}

// dualStackCall runs a call between alice (IPv4, behind the NAT) and bob
// (IPv6, behind the firewall) through a dual-stack natproxy, with
// rtpengine behind it when relay is set; alice calls when v4Calls, else
// bob; with late the INVITE has no SDP (the 200 offers, the ACK answers).
// The callee must see the Record-Route rrAtCallee. With a relay the
// parties talk between the ACK and the BYE.
func dualStackCall(t *testing.T, relay, v4Calls, late bool, rrAtCallee []string) *Proxy {
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: netlab.IPv6Firewall, Timeout: 30 * time.Second})
	rpc := startRegistrar(t, lab, netlab.Server1) // natproxy's address is not the registrar's alias: its Routes go to it
	self, self6 := netip.AddrPortFrom(netlab.Server2, 5060), netip.AddrPortFrom(netlab.Server2V6, 5060)
	registrar := netip.AddrPortFrom(netlab.Server1, 5060)
	_, err := NewProxy(Config{Conn: lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Server2, 0)), Self: self6, Upstream: registrar,
		AltConn: lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Server2V6, 0)), AltSelf: self})
	require.ErrorContains(t, err, "must be in Upstream's family")
	logs := &netlab.Output{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("natproxy said:\n%s", logs.String())
		}
	})
	cfg := Config{Conn: lab.ListenUDP(netlab.WAN, self), Self: self, Upstream: registrar,
		AltConn: lab.ListenUDP(netlab.WAN, self6), AltSelf: self6, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if relay {
		eng := lab.StartRtpengine(netlab.WAN, netip.AddrPortFrom(netlab.Server1, 2223), netlab.Server1, 30000, 30099)
		client := rtpengine.NewClient(lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Server2, 0)), rtpengine.ClientConfig{RTO: 100 * time.Millisecond})
		t.Cleanup(func() { client.Close() })
		set, err := rtpengine.NewSet(rtpengine.SetConfig{Client: client, Instances: []netip.AddrPort{eng.NG}})
		require.NoError(t, err)
		if cfg.Relay, err = sipedge.New(sipedge.Config{Set: set, Self: self, AltSelf: self6, Logger: cfg.Logger}); err != nil {
			require.NoError(t, err)
		}
	}
	p, err := NewProxy(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })

	ua := func(a netip.AddrPort) *labUA {
		return &labUA{t: t, conn: lab.ListenUDP(netlab.LAN, a), self: a, buf: make([]byte, 65535)}
	}
	alice := &dualParty{ua: ua(netip.AddrPortFrom(netlab.Client, 5072)), name: "alice", proxy: self,
		media: lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client, 7002)), sdp: netip.AddrPortFrom(netlab.Client, 7002),
		fixed: "c=IN IP4 203.0.113.1\r\n", relayC: "c=IN IP4 203.0.113.2\r\n", via: "Via: SIP/2.0/UDP 203.0.113.3:5060;branch=",
		contact: "sip:alice@192.168.1.10:5072;alias=203.0.113.1~5072~1"}
	bob := &dualParty{ua: ua(netip.AddrPortFrom(netlab.Client6, 5074)), name: "bob", proxy: self6,
		media: lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client6, 7000)), sdp: netip.AddrPortFrom(netlab.Client6, 7000),
		fixed: "c=IN IP6 2001:db8:1::10\r\n", relayC: "c=IN IP6 2001:db8:ff::2\r\n", via: "Via: SIP/2.0/UDP [2001:db8:ff::3]:5060;branch=",
		contact: "sip:bob@[2001:db8:1::10]:5074"}
	alice.ua.register(self, "alice")
	bob.ua.register(self6, "bob")
	dump := rpc("ul.dump")
	require.Contains(t, dump, alice.contact, "the IPv4 UA behind NAT gets the alias")
	require.Contains(t, dump, bob.contact, "the IPv6 UA's Contact")
	require.NotContains(t, dump, bob.contact+";alias", "an IPv6 UA whose Contact is its source needs no fix")

	caller, callee := bob, alice
	if v4Calls {
		caller, callee = alice, bob
	}
	// the caller's SDP: in the INVITE, or with a late offer in the ACK
	inviteBody, ackBody := withSDP(sdpOf(caller.sdp)), withSDP("")
	if late {
		inviteBody, ackBody = ackBody, inviteBody
	}
	caller.ua.send(caller.proxy, "INVITE sip:"+callee.name+"@203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP "+caller.ua.self.String()+";branch=z9hG4bKinv;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:"+caller.name+"@203.0.113.2>;tag=c1\r\nTo: <sip:"+callee.name+"@203.0.113.2>\r\nCall-ID: dual1\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:"+caller.name+"@"+caller.ua.self.String()+">\r\n"+inviteBody)
	invite := callee.ua.await("the INVITE", func(m *sipmsg.Message) bool { return m.IsMethod("INVITE") })
	switch {
	case late:
		require.NotContains(t, invite, "c=IN", "a late offer: no SDP\n%s", invite)
	case relay:
		require.Contains(t, invite, callee.relayC, "rtpengine's address in %s's family\n%s", callee.name, invite)
	default:
		require.Contains(t, invite, caller.fixed, "the offer is not bridged\n%s", invite)
		require.Equal(t, uint64(1), p.CrossFamily(), "the offer reached a UA of the other family")
	}
	rr := headerValues(invite, "Record-Route")
	require.Equal(t, rrAtCallee, rr, "towards the callee first: the proxy's address in its family; the double Record-Route where the families meet\n%s", invite)
	require.Contains(t, invite, callee.via, "Via in the callee's family")
	require.Contains(t, invite, "Contact: <"+caller.contact+">", "%s", invite)

	// the callee answers (with a late offer: offers) with its own (for
	// alice: private) addresses
	var im sipmsg.Message
	require.NoError(t, im.Parse([]byte(invite)))
	ok := string(answer200(&im, "sip:"+callee.name+"@"+callee.ua.self.String()))
	ok = strings.Replace(ok, "Content-Length: 0\r\n\r\n", withSDP(sdpOf(callee.sdp)), 1)
	callee.ua.send(callee.proxy, ok)
	got := caller.ua.await("the 200", func(m *sipmsg.Message) bool {
		return m.StatusCode() == 200 && m.CSeqMethod() != nil && string(m.CSeqMethod()) == "INVITE"
	})
	require.Contains(t, got, "Contact: <"+callee.contact+">", "%s", got)
	if relay {
		require.Contains(t, got, caller.relayC, "rtpengine's address in %s's family\n%s", caller.name, got)
	} else {
		require.Contains(t, got, callee.fixed, "%s", got)
		require.Equal(t, uint64(2), p.CrossFamily(), "the answer reached a UA of the other family")
		require.Contains(t, logs.String(), "cannot bridge families")
	}
	var gm sipmsg.Message
	require.NoError(t, gm.Parse([]byte(got)))
	caller.sendTo, err = sdp.MediaAddr(gm.Body(), "audio")
	require.NoError(t, err)

	// the caller's ACK along its route set (the Record-Route reversed),
	// first to the proxy's address in its family
	rr = headerValues(got, "Record-Route")
	route := make([]string, len(rr))
	for i, v := range rr {
		route[len(rr)-1-i] = v
	}
	require.True(t, strings.HasPrefix(route[0], "<sip:"+caller.proxy.String()+";lr"), "the caller's first hop is the proxy in its family: %s", route[0])
	caller.ua.send(caller.proxy, "ACK "+callee.contact+" SIP/2.0\r\nVia: SIP/2.0/UDP "+caller.ua.self.String()+";branch=z9hG4bKack;rport\r\n"+
		"Route: "+strings.Join(route, ", ")+"\r\nMax-Forwards: 70\r\nFrom: <sip:"+caller.name+"@203.0.113.2>;tag=c1\r\nTo: <sip:"+callee.name+"@203.0.113.2>;tag=bob1\r\n"+
		"Call-ID: dual1\r\nCSeq: 1 ACK\r\n"+ackBody)
	ack := callee.ua.await("the ACK", func(m *sipmsg.Message) bool { return m.IsMethod("ACK") })
	require.True(t, strings.HasPrefix(ack, "ACK sip:"+callee.name+"@"+callee.ua.self.String()+" SIP/2.0\r\n"), "%s", ack)
	require.NotContains(t, ack, "Route:", "every Route was consumed: %s", ack)
	callerSDP := &im
	if late {
		require.Contains(t, ack, callee.relayC, "the late answer: rtpengine's address in %s's family\n%s", callee.name, ack)
		var am sipmsg.Message
		require.NoError(t, am.Parse([]byte(ack)))
		callerSDP = &am
	}
	callee.sendTo, err = sdp.MediaAddr(callerSDP.Body(), "audio")
	require.NoError(t, err)
	if relay {
		talk(t, alice, bob)
	}

	// the callee's BYE along its route set (the Record-Route in order): to
	// the proxy in its family, the registrar, the proxy again, which sends
	// it to the caller in the caller's family
	callee.ua.send(callee.proxy, "BYE "+caller.contact+" SIP/2.0\r\nVia: SIP/2.0/UDP "+callee.ua.self.String()+";branch=z9hG4bKbye;rport\r\n"+
		"Route: "+strings.Join(rr, ", ")+"\r\nMax-Forwards: 70\r\nFrom: <sip:"+callee.name+"@203.0.113.2>;tag=bob1\r\nTo: <sip:"+caller.name+"@203.0.113.2>;tag=c1\r\n"+
		"Call-ID: dual1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
	bye := caller.ua.await("the BYE", func(m *sipmsg.Message) bool { return m.IsMethod("BYE") })
	require.NotContains(t, bye, "Route:", "every Route was consumed: %s", bye)
	require.Contains(t, bye, caller.via, "Via in the caller's leg's family")
	return p
}
