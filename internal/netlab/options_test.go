package netlab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var refl1 = netip.AddrPortFrom(Server1, 7000)

// TestHairpin: with Hairpin, a packet from one LAN socket to another's
// public mapping arrives, and its source is the sender's public mapping
// (RFC 4787 REQ-9); `stun` says "will hairpin". Without it, nothing arrives.
func TestHairpin(t *testing.T) {
	t.Parallel()
	RequireTools(t, "stun", "turnutils_natdiscovery")
	for _, kind := range []Kind{EIMEIF, EIMADF, EIMAPDF, ADMAPDF, APDM} {
		for _, hairpin := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/hairpin=%t", kind, hairpin), func(t *testing.T) {
				t.Parallel()
				lab := New(t, Config{Kind: kind, Hairpin: hairpin, Stund: true, Coturn: kind == EIMAPDF})
				reflector(t, lab, refl1)
				a := lab.ListenUDP(LAN, netip.MustParseAddrPort("0.0.0.0:43000"))
				b := lab.ListenUDP(LAN, netip.MustParseAddrPort("0.0.0.0:44000"))
				ma, mb := mappedVia(t, a, refl1), mappedVia(t, b, refl1)
				// B must have sent to A's mapping's address first for the
				// filtering kinds to let a reply in; the hairpin path is
				// inside the router, so only the DNAT matters.
				_, err := b.WriteToUDPAddrPort([]byte("hairpin"), ma)
				require.NoError(t, err)
				from, ok := receive(a, "hairpin", time.Second)
				require.Equal(t, hairpin, ok, "hairpinned packet delivered")
				if ok {
					require.Equal(t, mb.Addr(), from.Addr(), "source is B's public address")
					if kind != APDM && kind != ADMAPDF { // their mapping towards A's mapping is a new one
						require.Equal(t, mb, from, "source is B's mapping")
					}
				}
				want := stunSays[kind]
				if hairpin {
					want = strings.Replace(want, "no hairpin", "will hairpin", 1)
				}
				require.Equal(t, want, stunVerdict(t, lab), "stun (RFC 3489)")
				if kind == EIMAPDF {
					out := natdiscovery(t, lab, "-H")
					require.Equal(t, hairpin, strings.Contains(out, "successful hairpinning"), "natdiscovery -H:\n%s", out)
				}
			})
		}
	}
}

// TestBindingTimeout: with Timeout 5 s a binding idle for 6 s is gone (the
// server's late packet is dropped), one refreshed every 2 s survives, and
// with kernel defaults an idle binding survives 6 s. coturn's RFC 5780
// lifetime probe (-t) agrees.
func TestBindingTimeout(t *testing.T) {
	t.Parallel()
	RequireTools(t, "turnutils_natdiscovery")
	cases := []struct {
		kind    Kind
		timeout time.Duration
		refresh time.Duration // 0: idle
		want    bool
	}{
		{EIMAPDF, 5 * time.Second, 0, false},
		{EIMAPDF, 5 * time.Second, 2 * time.Second, true},
		{EIMEIF, 5 * time.Second, 0, false},
		{EIMEIF, 5 * time.Second, 2 * time.Second, true},
		{EIMAPDF, 0, 0, true}, // control: kernel default 30 s
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/timeout=%v/refresh=%v", tc.kind, tc.timeout, tc.refresh), func(t *testing.T) {
			t.Parallel()
			lab := New(t, Config{Kind: tc.kind, Timeout: tc.timeout, Coturn: tc.refresh == 0 && tc.timeout > 0 && tc.kind == EIMAPDF})
			if tc.timeout > 0 {
				v, err := lab.Sysctl(RTR, "net.netfilter.nf_conntrack_udp_timeout")
				require.NoError(t, err)
				require.Equal(t, fmt.Sprint(int(tc.timeout.Seconds())), v)
			}
			srv := lab.ListenUDP(WAN, refl1)
			cli := lab.ListenUDP(LAN, netip.MustParseAddrPort("0.0.0.0:48000"))
			_, err := cli.WriteToUDPAddrPort([]byte("hello"), refl1)
			require.NoError(t, err)
			from, ok := receive(srv, "hello", 2*time.Second)
			require.True(t, ok)
			stop := make(chan struct{})
			if tc.refresh > 0 {
				go func() {
					tick := time.NewTicker(tc.refresh)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							_, _ = cli.WriteToUDPAddrPort([]byte("keepalive"), refl1)
						}
					}
				}()
			}
			time.Sleep(6 * time.Second) // the idle time is what is being tested
			close(stop)
			_, err = srv.WriteToUDPAddrPort([]byte("late"), from)
			require.NoError(t, err)
			_, got := receive(cli, "late", time.Second)
			require.Equal(t, tc.want, got, "late packet after 6 s delivered")

			if lab.Config().Coturn {
				// RFC 5780 §4.6: a response via the old mapping after T seconds
				out := natdiscovery(t, lab, "-t", "-T", "3")
				require.Contains(t, out, "RFC 5780 response 2", "binding alive after 3 s")
				out = natdiscovery(t, lab, "-t", "-T", "7")
				require.NotContains(t, out, "RFC 5780 response 2", "binding gone after 7 s")
			}
		})
	}
}

// TestLoss: LossPercent drops about that share of forwarded packets.
func TestLoss(t *testing.T) {
	t.Parallel()
	lab := New(t, Config{Kind: EIMEIF, LossPercent: 20})
	srv := lab.ListenUDP(WAN, refl1)
	cli := lab.ListenUDP(LAN, netip.MustParseAddrPort("0.0.0.0:49000"))
	const n = 300
	got := make(chan int)
	go func() {
		count := 0
		buf := make([]byte, 100)
		for {
			_ = srv.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, err := srv.ReadFromUDPAddrPort(buf); err != nil {
				got <- count
				return
			}
			count++
		}
	}()
	for i := 0; i < n; i++ {
		_, err := cli.WriteToUDPAddrPort([]byte("x"), refl1)
		require.NoError(t, err)
	}
	c := <-got
	// binomial(300, 0.8): mean 240, sd 6.9; these bounds are more than 5 sd away
	require.Greater(t, c, 200, "received %d of %d", c, n)
	require.Less(t, c, 280, "received %d of %d", c, n)
}

// TestOutage: while Outage is on the router forwards nothing; after it,
// the same binding carries packets again.
func TestOutage(t *testing.T) {
	t.Parallel()
	lab := New(t, Config{Kind: EIMEIF, Timeout: 5 * time.Second})
	srv := lab.ListenUDP(WAN, refl1)
	cli := lab.ListenUDP(LAN, netip.MustParseAddrPort("0.0.0.0:49002"))
	buf := make([]byte, 100)
	cross := func(msg string, wait time.Duration) (netip.AddrPort, error) {
		_, err := cli.WriteToUDPAddrPort([]byte(msg), refl1)
		require.NoError(t, err)
		require.NoError(t, srv.SetReadDeadline(time.Now().Add(wait)))
		n, from, err := srv.ReadFromUDPAddrPort(buf)
		if err == nil {
			require.Equal(t, msg, string(buf[:n]))
		}
		return from, err
	}
	before, err := cross("before", 2*time.Second)
	require.NoError(t, err)
	lab.Outage(true)
	_, err = cross("during", 300*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "nothing crosses during the outage")
	lab.Outage(false)
	after, err := cross("after", 2*time.Second)
	require.NoError(t, err)
	require.Equal(t, before, after, "the binding outlived a short outage")
}

// TestSIPALG: without the ALG an INVITE with private addresses crosses the
// NAT unchanged; with it the kernel rewrites Via, Contact, o= and c= to the
// public address and expects RTP and RTCP.
func TestSIPALG(t *testing.T) {
	t.Parallel()
	for _, alg := range []bool{false, true} {
		t.Run(fmt.Sprintf("alg=%t", alg), func(t *testing.T) {
			t.Parallel()
			lab := New(t, Config{Kind: EIMAPDF, ALG: alg})
			srv := lab.ListenUDP(WAN, netip.AddrPortFrom(Server1, 5060))
			cli := lab.ListenUDP(LAN, netip.AddrPortFrom(Client, 5060))
			invite := testInvite()
			_, err := cli.WriteToUDPAddrPort([]byte(invite), netip.AddrPortFrom(Server1, 5060))
			require.NoError(t, err)
			buf := make([]byte, 4000)
			require.NoError(t, srv.SetReadDeadline(time.Now().Add(3*time.Second)))
			n, _, err := srv.ReadFromUDPAddrPort(buf)
			require.NoError(t, err)
			got := string(buf[:n])
			if !alg {
				require.Equal(t, invite, got)
				return
			}
			for _, want := range []string{
				"Via: SIP/2.0/UDP 203.0.113.1:5060;", "Contact: <sip:alice@203.0.113.1:5060>",
				"o=alice 2890844526 2890844526 IN IP4 203.0.113.1\r\n", "c=IN IP4 203.0.113.1\r\n",
				// two addresses, each one character shorter in the body
				fmt.Sprintf("Content-Length: %d\r\n", len(testSDP)-2),
			} {
				require.Contains(t, got, want)
			}
			require.Contains(t, got, "Call-ID: netlab-1@192.168.1.10", "the ALG leaves Call-ID alone")
			out, err := lab.Command(RTR, "conntrack", "-L", "expect").CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Equal(t, 2, strings.Count(string(out), "helper=sip"), "RTP and RTCP expectations:\n%s", out)
		})
	}
}

const testSDP = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

func testInvite() string {
	body := testSDP
	return "INVITE sip:bob@203.0.113.2 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-netlab-1;rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:alice@192.168.1.10:5060>;tag=1\r\n" +
		"To: <sip:bob@203.0.113.2>\r\n" +
		"Call-ID: netlab-1@192.168.1.10\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:alice@192.168.1.10:5060>\r\n" +
		"Content-Type: application/sdp\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// TestKamailio: sipp registers alice through the NAT; nathelper stores the
// source as the received address. Behind the ALG, the registrar sees no NAT.
func TestKamailio(t *testing.T) {
	t.Parallel()
	RequireTools(t, "sipp")
	for _, alg := range []bool{false, true} {
		t.Run(fmt.Sprintf("alg=%t", alg), func(t *testing.T) {
			t.Parallel()
			lab := New(t, Config{Kind: EIMAPDF, Kamailio: true, ALG: alg})
			scen := writeFile(t, lab.Dir(), "register.xml", RegisterScenario)
			cmd := lab.Command(LAN, "timeout", "20", "sipp", "203.0.113.2:5060", "-sf", scen, "-m", "1",
				"-i", Client.String(), "-p", "5070", "-nostdin")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "sipp REGISTER: %s", tailString(string(out)))
			dump, err := lab.KamailioRPC("ul.dump")
			require.NoError(t, err)
			addr, recv := field(dump, "Address:"), field(dump, "Received:")
			if alg {
				require.Equal(t, "sip:alice@203.0.113.1:5070", addr, dump)
				require.Equal(t, "[not set]", recv, dump)
			} else {
				require.Equal(t, "sip:alice@192.168.1.10:5070", addr, dump)
				require.Equal(t, "sip:203.0.113.1:5070", recv, dump)
				require.Contains(t, lab.KamailioLog(), "NAT detected: REGISTER from 203.0.113.1:5070")
			}
		})
	}
}

func tailString(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// TestKamailioAuth: with KamailioAuth a REGISTER without credentials is
// challenged (401 with a digest WWW-Authenticate) and nothing is stored.
func TestKamailioAuth(t *testing.T) {
	t.Parallel()
	lab := New(t, Config{Kind: EIMAPDF, KamailioAuth: true})
	c := lab.ListenUDP(LAN, netip.AddrPortFrom(Client, 5070))
	reg := "REGISTER sip:203.0.113.2 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK-auth-1;rport\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:alice@203.0.113.2>;tag=a1\r\nTo: <sip:alice@203.0.113.2>\r\n" +
		"Call-ID: auth-1@192.168.1.10\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.168.1.10:5070>\r\n" +
		"Expires: 60\r\nContent-Length: 0\r\n\r\n"
	_, err := c.WriteToUDPAddrPort([]byte(reg), netip.AddrPortFrom(Server1, KamailioPort))
	require.NoError(t, err)
	buf := make([]byte, 4000)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	resp := string(buf[:n])
	require.True(t, strings.HasPrefix(resp, "SIP/2.0 401 "), resp)
	require.Contains(t, resp, `WWW-Authenticate: Digest realm="203.0.113.2"`)
	dump, err := lab.KamailioRPC("ul.dump")
	require.NoError(t, err)
	require.NotContains(t, dump, "alice")
}

// TestKamailioSTUN: kamailio answers STUN Binding requests on its SIP port
// (RFC 5626 §4.4.2 keep-alives refresh the very binding SIP uses).
func TestKamailioSTUN(t *testing.T) {
	t.Parallel()
	lab := New(t, Config{Kind: EIMAPDF, Kamailio: true})
	c := lab.ListenUDP(LAN, netip.AddrPortFrom(Client, 5062))
	req := make([]byte, 20)
	binary.BigEndian.PutUint16(req[0:], 0x0001) // Binding request, no attributes
	binary.BigEndian.PutUint32(req[4:], 0x2112A442)
	copy(req[8:], "netlab-stun1")
	buf := make([]byte, 1500)
	for try := 0; ; try++ {
		require.Less(t, try, 4, "no STUN answer from kamailio")
		_, err := c.WriteToUDPAddrPort(req, netip.AddrPortFrom(Server1, KamailioPort))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if isTimeout(err) {
			continue
		}
		require.NoError(t, err)
		r := buf[:n]
		require.GreaterOrEqual(t, n, 32)
		require.Equal(t, uint16(0x0101), binary.BigEndian.Uint16(r), "Binding success")
		require.Equal(t, req[8:20], r[8:20], "transaction ID")
		// find XOR-MAPPED-ADDRESS (0x0020)
		for a := r[20:]; len(a) >= 4; {
			typ, l := binary.BigEndian.Uint16(a), int(binary.BigEndian.Uint16(a[2:]))
			require.LessOrEqual(t, 4+l, len(a))
			if typ == 0x0020 {
				port := binary.BigEndian.Uint16(a[6:]) ^ 0x2112
				ip := binary.BigEndian.Uint32(a[8:]) ^ 0x2112A442
				got := netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), port)
				require.Equal(t, netip.AddrPortFrom(Public, 5062), got)
				return
			}
			a = a[4+(l+3)&^3:]
		}
		t.Fatalf("no XOR-MAPPED-ADDRESS in %x", r)
	}
}
