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
// IPv4-only registrar. An IPv4 UA behind the NAT registers over IPv4 and
// gets the usual fix (an alias); an IPv6 UA behind the firewall registers
// over IPv6 and is left alone (its Contact is its source). The IPv6 UA
// calls the IPv4 one: the proxy record-routes both of its addresses where
// the dialog crosses families, so the ACK from the IPv6 side and the BYE
// from the IPv4 side both follow the route set across; and it says, with
// a warning and CrossFamily, that the IPv6 offer and the IPv4 answer reach
// UAs that cannot use them (no media relay bridges families here).
func TestLabNATProxyDualStack(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "kamailio", "kamcmd")
	p := dualStackCall(t, false, nil)
	require.Equal(t, uint64(2), p.CrossFamily(), "the IPv6 offer reached an IPv4 UA, the IPv4 answer an IPv6 UA")
}

// TestLabNATProxyDualStackRelay: the same call with rtpengine behind the
// dual-stack natproxy: the relay writes each UA's SDP in its family
// (rtpengine's "address family": IPv4 for alice, IPv6 for bob) and RTP
// flows both ways between the IPv6 UA behind the firewall and the IPv4 UA
// behind the NAT.
func TestLabNATProxyDualStackRelay(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "kamailio", "kamcmd", "rtpengine")
	p := dualStackCall(t, true, func(alice, bob dualCallUA) { talk(t, alice, bob) })
	require.Zero(t, p.CrossFamily(), "the relay bridged the families")
}

// talk has both parties send 1 s of RTP to the relay address their SDP
// names, from their media sockets (symmetric RTP opens the NAT and the
// firewall for the relay), and requires each to hear the other.
func talk(t *testing.T, alice, bob dualCallUA) {
	// each side sends to the relay address it was given, from its media
	// socket (symmetric RTP opens the NAT and the firewall for the relay)
	var wg sync.WaitGroup
	got := make([]int, 2)
	for i, s := range []struct {
		conn *net.UDPConn
		to   netip.AddrPort
	}{{alice.media, alice.relay}, {bob.media, bob.relay}} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			pkt := append([]byte{0x80, 0}, make([]byte, 170)...)
			for range 50 {
				_, _ = s.conn.WriteToUDPAddrPort(pkt, s.to)
				time.Sleep(20 * time.Millisecond)
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			_ = s.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			for {
				n, _, err := s.conn.ReadFromUDPAddrPort(buf)
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

// dualCallUA is a party of dualStackCall: its media socket and where the
// SDP it received says to send media.
type dualCallUA struct {
	media *net.UDPConn
	relay netip.AddrPort
}

// dualStackCall runs the call of TestLabNATProxyDualStack, with rtpengine
// behind natproxy when relay is set; during (when not nil) runs between
// the ACK and the BYE.
func dualStackCall(t *testing.T, relay bool, during func(alice, bob dualCallUA)) *Proxy {
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
	alice, bob := ua(netip.AddrPortFrom(netlab.Client, 5072)), ua(netip.AddrPortFrom(netlab.Client6, 5074))
	alice.register(self, "alice")
	bob.register(self6, "bob")
	dump := rpc("ul.dump")
	require.Contains(t, dump, "sip:alice@192.168.1.10:5072;alias=203.0.113.1~5072~1", "the IPv4 UA behind NAT gets the alias")
	require.Contains(t, dump, "sip:bob@[2001:db8:1::10]:5074", "the IPv6 UA's Contact")
	require.NotContains(t, dump, "sip:bob@[2001:db8:1::10]:5074;alias", "an IPv6 UA whose Contact is its source needs no fix")

	// bob (IPv6) calls alice (IPv4)
	aliceMedia := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client, 7002))
	bobMedia := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client6, 7000))
	offer := sdpOf(netip.AddrPortFrom(netlab.Client6, 7000))
	bob.send(self6, "INVITE sip:alice@203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP "+bob.self.String()+";branch=z9hG4bKbobinv;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:bob@203.0.113.2>;tag=b1\r\nTo: <sip:alice@203.0.113.2>\r\nCall-ID: dual1\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:bob@"+bob.self.String()+">\r\nContent-Type: application/sdp\r\nContent-Length: "+strconv.Itoa(len(offer))+"\r\n\r\n"+offer)
	invite := alice.await("the INVITE", func(m *sipmsg.Message) bool { return m.IsMethod("INVITE") })
	if relay {
		require.Contains(t, invite, "c=IN IP4 203.0.113.2\r\n", "rtpengine's IPv4 address for alice")
	} else {
		require.Contains(t, invite, "c=IN IP6 2001:db8:1::10\r\n", "the IPv6 offer is left alone")
	}
	rr := headerValues(invite, "Record-Route")
	require.GreaterOrEqual(t, len(rr), 3, "%s", invite)
	require.Equal(t, "<sip:203.0.113.3:5060;lr;nat=yes>", rr[0], "towards alice (behind NAT: marked): the proxy's IPv4 address\n%s", invite)
	require.Equal(t, "<sip:[2001:db8:ff::3]:5060;lr>", rr[len(rr)-1], "towards bob: its IPv6 address (the double Record-Route)\n%s", invite)
	require.Equal(t, "<sip:203.0.113.3:5060;lr>", rr[len(rr)-2], "%s", invite)
	require.Contains(t, invite, "Via: SIP/2.0/UDP 203.0.113.3:5060;branch=", "Via in the IPv4 leg's family")
	if !relay {
		require.Equal(t, uint64(1), p.CrossFamily(), "the IPv6 offer reached an IPv4 UA")
	}

	// alice answers from behind the NAT with her private addresses
	var im sipmsg.Message
	require.NoError(t, im.Parse([]byte(invite)))
	answer := sdpOf(netip.AddrPortFrom(netlab.Client, 7002))
	ok := string(answer200(&im, "sip:alice@"+alice.self.String()))
	ok = strings.Replace(ok, "Content-Length: 0\r\n\r\n", "Content-Type: application/sdp\r\nContent-Length: "+strconv.Itoa(len(answer))+"\r\n\r\n"+answer, 1)
	alice.send(self, ok)
	got := bob.await("the 200", func(m *sipmsg.Message) bool {
		return m.StatusCode() == 200 && m.CSeqMethod() != nil && string(m.CSeqMethod()) == "INVITE"
	})
	require.Contains(t, got, "Contact: <sip:alice@192.168.1.10:5072;alias=203.0.113.1~5072~1>", "%s", got)
	if relay {
		require.Contains(t, got, "c=IN IP6 2001:db8:ff::2\r\n", "rtpengine's IPv6 address for bob")
	} else {
		require.Contains(t, got, "c=IN IP4 203.0.113.1\r\n", "alice's answer gets the usual NAT fix")
		require.Equal(t, uint64(2), p.CrossFamily(), "the IPv4 answer reached an IPv6 UA")
		require.Contains(t, logs.String(), "cannot bridge families")
	}
	var gm sipmsg.Message
	require.NoError(t, gm.Parse([]byte(got)))
	bobRelay, err := sdp.MediaAddr(gm.Body(), "audio")
	require.NoError(t, err)
	aliceRelay, err := sdp.MediaAddr(im.Body(), "audio")
	require.NoError(t, err)

	// bob's ACK along his route set (the Record-Route reversed): first to
	// the proxy's IPv6 address, which removes both of its entries
	rr = headerValues(got, "Record-Route")
	route := make([]string, len(rr))
	for i, v := range rr {
		route[len(rr)-1-i] = v
	}
	require.Equal(t, "<sip:[2001:db8:ff::3]:5060;lr>", route[0], "bob's first hop is the proxy's IPv6 address")
	bob.send(self6, "ACK sip:alice@192.168.1.10:5072;alias=203.0.113.1~5072~1 SIP/2.0\r\nVia: SIP/2.0/UDP "+bob.self.String()+";branch=z9hG4bKboback;rport\r\n"+
		"Route: "+strings.Join(route, ", ")+"\r\nMax-Forwards: 70\r\nFrom: <sip:bob@203.0.113.2>;tag=b1\r\nTo: <sip:alice@203.0.113.2>;tag=bob1\r\n"+
		"Call-ID: dual1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
	ack := alice.await("the ACK", func(m *sipmsg.Message) bool { return m.IsMethod("ACK") })
	require.True(t, strings.HasPrefix(ack, "ACK sip:alice@192.168.1.10:5072 SIP/2.0\r\n"), "%s", ack)
	if during != nil {
		during(dualCallUA{media: aliceMedia, relay: aliceRelay}, dualCallUA{media: bobMedia, relay: bobRelay})
	}

	// alice's BYE along her route set (the Record-Route in order): over
	// IPv4 to the proxy, then the registrar, then the proxy again, which
	// sends it to bob over IPv6
	alice.send(self, "BYE sip:bob@"+bob.self.String()+" SIP/2.0\r\nVia: SIP/2.0/UDP "+alice.self.String()+";branch=z9hG4bKalicebye;rport\r\n"+
		"Route: "+strings.Join(rr, ", ")+"\r\nMax-Forwards: 70\r\nFrom: <sip:alice@203.0.113.2>;tag=bob1\r\nTo: <sip:bob@203.0.113.2>;tag=b1\r\n"+
		"Call-ID: dual1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
	bye := bob.await("the BYE", func(m *sipmsg.Message) bool { return m.IsMethod("BYE") })
	require.NotContains(t, bye, "Route:", "every Route was consumed: %s", bye)
	require.Contains(t, bye, "Via: SIP/2.0/UDP [2001:db8:ff::3]:5060;branch=", "Via in the IPv6 leg's family")
	return p
}
