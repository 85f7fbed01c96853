package agent

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/binding"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/keepalive"
)

// TestLabPlanTruth starts the agent in the lab's LAN for every NAT kind,
// with and without the kernel SIP ALG, with and without miniupnpd, and
// behind CGNAT, and holds its Plan to the lab's truth: the NAT behaviour,
// the decision, the Contact, CGNAT/double NAT, the keep-alive from the
// measured 5 s binding timeout, the predictions; then a REGISTER to
// kamailio and its answer fed back: the ALG is seen only where there is one.
func TestLabPlanTruth(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "kamailio", "turnserver", "nft")
	type lc struct {
		kind             netlab.Kind
		alg, upnp, cgnat bool
		double           bool // a private outer NAT: double NAT, not CGNAT
	}
	var cases []lc
	for _, k := range []netlab.Kind{netlab.EIMEIF, netlab.EIMADF, netlab.EIMAPDF, netlab.ADMAPDF, netlab.APDM, netlab.None} {
		for _, alg := range []bool{false, true} {
			for _, upnp := range []bool{false, true} {
				if k != netlab.None || !upnp {
					cases = append(cases, lc{kind: k, alg: alg, upnp: upnp})
				}
			}
		}
	}
	cases = append(cases, lc{kind: netlab.EIMAPDF, cgnat: true}, lc{kind: netlab.EIMAPDF, cgnat: true, upnp: true},
		lc{kind: netlab.APDM, cgnat: true, upnp: true}, lc{kind: netlab.EIMAPDF, double: true, upnp: true})
	for _, c := range cases {
		name := fmt.Sprintf("%s/alg=%v/upnp=%v/cgnat=%v/double=%v", c.kind, c.alg, c.upnp, c.cgnat, c.double)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: c.kind, ALG: c.alg, UPnP: c.upnp, CGNAT: c.cgnat, OuterPrivate: c.double,
				Timeout: 5 * time.Second, Kamailio: true, Coturn: true})
			truth := lab.Truth()
			sip := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(truth.Client, 5062))
			rtp := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(truth.Client, 40000))
			registrar := netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort)
			a, err := New(Config{SIP: sip, Media: []net.PacketConn{rtp}, Registrar: registrar,
				STUN: []netip.AddrPort{netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)}, LifetimeMax: 12 * time.Second,
				Gateway: netlab.RouterLAN, DialContext: lab.DialContext(netlab.LAN), ListenPacket: lab.ListenPacket(netlab.LAN)})
			require.NoError(t, err)
			defer a.Close()
			answers := make(chan []byte, 4)
			readLoop(t, a, answers)
			mediaLoop(t, a)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p, err := a.Start(ctx)
			require.NoError(t, err)
			t.Logf("plan:\n%s", p)

			behind := c.kind != netlab.None
			mapped := c.upnp && !truth.DoubleNAT
			direct := !behind || truth.Mapping == netlab.EndpointIndependent
			require.Equal(t, string(truth.Mapping), p.NAT.Mapping.String())
			require.Equal(t, string(truth.Filtering), p.NAT.Filtering.String())
			if c.upnp { // the gateway's external address is what tells
				require.Equal(t, truth.CGNAT, p.CGNAT)
				require.Equal(t, truth.DoubleNAT, p.DoubleNAT)
			} else if behind {
				require.False(t, p.CGNAT, "not claimed without evidence")
				require.Contains(t, fmt.Sprint(p.Notes), "CGNAT and double NAT: not tested")
			}
			require.Equal(t, truth.Public, p.Contact.Addr(), "the Contact is the public address")
			switch {
			case mapped:
				require.Equal(t, ViaPortMapping, p.Decision)
				require.Equal(t, FromMapping, p.ContactFrom)
				require.Equal(t, FromMapping, p.Media[0].From)
			case direct:
				require.Equal(t, Direct, p.Decision)
			default:
				require.Equal(t, Relay, p.Decision)
				require.True(t, p.Relay.Needed)
				require.Contains(t, p.Relay.Reason, "new public port for every destination")
			}
			require.Equal(t, direct || mapped, p.TwoWayAudio.Works, p.TwoWayAudio.Reason)
			require.True(t, p.IncomingCalls.Works, p.IncomingCalls.Reason)
			require.Equal(t, truth.Public, p.Media[0].Public.Addr())
			if behind {
				require.Equal(t, keepalive.STUN, p.KeepAlive.Kind, "kamailio answers STUN on its SIP port")
				// The router forgets after 5 s idle: the measured lifetime is at
				// most that (a loaded machine may see a probe go at 4 s), and the
				// interval is the one rule's answer to it.
				require.Positive(t, p.NAT.Lifetime)
				require.LessOrEqual(t, p.NAT.Lifetime, 5*time.Second)
				require.Equal(t, binding.KeepAliveInterval(p.NAT.Lifetime), p.KeepAlive.Interval)
				require.False(t, p.KeepAlive.Assumed)
				require.False(t, p.IncomingCalls.Assumed)
			} else {
				require.Zero(t, p.KeepAlive.Kind)
			}

			// REGISTER through the NAT; the answer fed back.
			req := []byte("REGISTER sip:" + netlab.Server1.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + p.Contact.String() + ";branch=z9hG4bK-lab1;rport\r\n" +
				"Max-Forwards: 70\r\nFrom: <sip:alice@" + netlab.Server1.String() + ">;tag=1\r\nTo: <sip:alice@" + netlab.Server1.String() + ">\r\n" +
				"Call-ID: lab-" + name + "\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@" + p.Contact.String() + ">\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n")
			var resp []byte
			for try := 0; resp == nil && try < 5; try++ {
				_, err = sip.WriteToUDPAddrPort(req, registrar)
				require.NoError(t, err)
				timeout := time.After(time.Second)
			wait:
				for {
					select {
					case b := <-answers: // kamailio also sends NAT pings; keep the answer to this REGISTER
						if bytes.HasPrefix(b, []byte("SIP/2.0 ")) && bytes.Contains(b, []byte("z9hG4bK-lab1")) {
							resp = b
							break wait
						}
					case <-timeout:
						break wait
					}
				}
			}
			require.NotNil(t, resp, "kamailio answered the REGISTER")
			rep, err := a.ObserveRegister(req, resp, registrar)
			require.NoError(t, err)
			if rep.Tampered() {
				require.True(t, truth.ALG, "an ALG seen where there is none: %s", rep.Signs)
				require.Contains(t, fmt.Sprint(a.Plan().Notes), "SIP ALG")
			}
			if truth.ALG && !c.upnp && truth.Mapping == netlab.EndpointIndependent {
				require.True(t, rep.Tampered(), "the kernel ALG rewrites the REGISTER")
			}
			t.Logf("ALG signs: %s", rep.Signs)
		})
	}
}
