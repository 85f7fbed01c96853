package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/ipaddr"
	"github.com/sipnat/sipnat/nat"
	"github.com/stretchr/testify/require"
)

// TestLabTruth runs natcheck in the lab's LAN against coturn (RFC 5780)
// for every NAT kind, with and without miniupnpd, behind CGNAT, and with
// UDP blocked, and holds its report to the lab's truth: what it tested is
// right, and what it could not test is absent, not "no".
func TestLabTruth(t *testing.T) {
	t.Parallel()
	type lc struct {
		kind        netlab.Kind
		upnp, cgnat bool
		double      bool // the outer NAT has a private inside network: double NAT, not CGNAT
		lifetime    bool
		ipv6        netlab.IPv6Mode
		ours        bool // the IPv6 server is sipnat's nat.Server on the WAN's two IPv6 addresses, not coturn
	}
	var cases []lc
	for _, k := range []netlab.Kind{netlab.EIMEIF, netlab.EIMADF, netlab.EIMAPDF, netlab.ADMAPDF, netlab.APDM, netlab.None} {
		cases = append(cases, lc{kind: k})
		if k != netlab.None {
			cases = append(cases, lc{kind: k, upnp: true})
		}
	}
	cases = append(cases, lc{kind: netlab.EIMAPDF, cgnat: true}, lc{kind: netlab.EIMAPDF, cgnat: true, upnp: true},
		lc{kind: netlab.APDM, cgnat: true, upnp: true}, lc{kind: netlab.EIMAPDF, double: true, upnp: true},
		lc{kind: netlab.EIMAPDF, double: true}, lc{kind: netlab.EIMAPDF, lifetime: true}, lc{kind: netlab.Blocked},
		lc{kind: netlab.EIMAPDF, ipv6: netlab.IPv6Firewall}, lc{kind: netlab.EIMAPDF, ipv6: netlab.IPv6NPT},
		lc{kind: netlab.EIMAPDF, ipv6: netlab.IPv6NAT66}, lc{kind: netlab.EIMAPDF, ipv6: netlab.IPv6Firewall, ours: true},
		lc{kind: netlab.EIMAPDF, ipv6: netlab.IPv6NPT, ours: true}, lc{kind: netlab.EIMAPDF, ipv6: netlab.IPv6Firewall, lifetime: true})
	for _, c := range cases {
		name := string(c.kind)
		if c.upnp {
			name += "+upnp"
		}
		if c.cgnat {
			name += "+cgnat"
		}
		if c.double {
			name += "+doublenat"
		}
		if c.lifetime {
			name += "+lifetime"
		}
		if c.ipv6 != "" {
			name += "+ipv6-" + string(c.ipv6)
		}
		if c.ours {
			name += "+our-server"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := netlab.Config{Kind: c.kind, UPnP: c.upnp, CGNAT: c.cgnat, OuterPrivate: c.double, IPv6: c.ipv6, Coturn: true}
			if c.lifetime {
				cfg.Timeout = 5 * time.Second
			}
			lab := netlab.New(t, cfg)
			truth := lab.Truth()
			o := options{
				servers: []netip.AddrPort{netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)}, names: []string{"coturn"},
				local: netip.AddrPortFrom(truth.Client, 0), portMap: true, gateway: netlab.RouterLAN,
				hostAddrs:    func() []netip.Addr { return []netip.Addr{truth.Client, truth.Client6} },
				listenPacket: lab.ListenPacket(netlab.LAN), dialContext: lab.DialContext(netlab.LAN),
			}
			if c.lifetime {
				o.lifetime = 8 * time.Second
			}
			if c.ipv6 != "" { // an IPv6 server beside the IPv4 one: the IPv6 line
				if c.ours {
					o.servers = append(o.servers, labServer6(t, lab))
					o.names = append(o.names, "sipnat6")
				} else {
					o.servers = append(o.servers, netip.AddrPortFrom(netlab.Server1V6, netlab.CoturnPort))
					o.names = append(o.names, "coturn6")
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			rep, err := check(ctx, o)
			var text bytes.Buffer
			if rep != nil {
				rep.writeText(&text)
			}
			t.Logf("natcheck said:\n%s", text.String())
			if c.kind == netlab.Blocked {
				require.ErrorIs(t, err, nat.ErrNoResponse)
				require.Contains(t, rep.UDP, "blocked")
				require.Nil(t, rep.NAT, "nothing about a NAT it could not reach")
				require.Contains(t, rep.Errors[0], "server coturn: no answer")
				return
			}
			require.NoError(t, err)
			require.Equal(t, "works", rep.UDP)
			require.Equal(t, netip.AddrPortFrom(truth.Public, 0).Addr(), rep.Servers[0].Public.Addr())
			n := rep.NAT
			require.Equal(t, nat.MethodRFC5780, n.Method)
			require.Equal(t, string(truth.Mapping), n.Mapping.String())
			require.Equal(t, string(truth.Filtering), n.Filtering.String())
			if c.kind == netlab.None {
				require.Nil(t, n.PortPreserved, "no NAT: port preservation not a question")
			} else {
				require.NotNil(t, n.PortPreserved)
				require.Equal(t, truth.PortPreservation, *n.PortPreserved)
				require.NotNil(t, n.Hairpin)
				require.Equal(t, truth.Hairpin, *n.Hairpin)
			}
			if c.lifetime {
				// The router forgets after 5 s idle (a loaded machine may see the
				// 4 s probe go too).
				require.Positive(t, n.LifetimeMS)
				require.LessOrEqual(t, n.LifetimeMS, int64(5000))
				require.Greater(t, n.LifetimeGoneMS, n.LifetimeMS)
				require.LessOrEqual(t, n.LifetimeGoneMS, int64(6000))
			} else if c.kind != netlab.None {
				require.Contains(t, n.LifetimeNote, "not measured")
			}

			if c.ipv6 != "" {
				v := rep.IPv6
				require.Equal(t, truth.Public6, v.Public.Addr(), "%+v", v)
				require.NotNil(t, v.Translated)
				require.Equal(t, truth.Public6 != truth.Client6, *v.Translated, "NPTv6 translates, a firewall does not")
				// The IPv6 firewall's behaviour, the RFC 4787 questions without translation.
				require.Equal(t, nat.MethodRFC5780, v.Method)
				require.Equal(t, string(truth.Mapping6), v.Mapping.String())
				require.Equal(t, string(truth.Filtering6), v.Filtering.String())
				want := map[netlab.IPv6Mode]ipaddr.Translation{netlab.IPv6Firewall: ipaddr.NoTranslation,
					netlab.IPv6NPT: ipaddr.NPTv6, netlab.IPv6NAT66: ipaddr.NAT66}[c.ipv6]
				require.Equal(t, want, v.Translation)
				require.Contains(t, text.String(), "IPv6 filtering:    address-and-port-dependent: only the address and port")
				if c.lifetime { // the firewall forgets idle UDP state after 5 s, as the IPv4 NAT does
					require.Positive(t, v.LifetimeMS, "%+v", v)
					require.LessOrEqual(t, v.LifetimeMS, int64(5000))
					require.Greater(t, v.LifetimeGoneMS, v.LifetimeMS)
					require.LessOrEqual(t, v.LifetimeGoneMS, int64(6000))
					require.Contains(t, text.String(), "IPv6 state:")
				} else {
					require.Zero(t, v.LifetimeMS)
				}
				if c.ipv6 == netlab.IPv6Firewall {
					require.Contains(t, text.String(), "IPv6 mapping:      no translation")
				} else {
					require.Contains(t, text.String(), "IPv6 mapping:      "+string(want)+" (endpoint-independent)")
				}
				require.Contains(t, v.HostAddrs, truth.Client6)
				require.Positive(t, rep.Servers[1].RTTMS)
			} else {
				require.Equal(t, "the host has no global IPv6 address", rep.IPv6.Note)
			}

			// Port mapping: which protocol answered, the test mapping made and deleted.
			g := rep.Gateway
			require.NotNil(t, g)
			require.Equal(t, truth.UPnP, g.UPnP || g.NATPMP || g.PCP, "%+v", g)
			if truth.UPnP {
				require.True(t, g.UPnP && g.NATPMP, "miniupnpd speaks UPnP IGD and NAT-PMP: %+v", g)
				require.Equal(t, truth.RouterWAN, g.External)
				require.True(t, g.Mapped.IsValid(), "%+v", g)
				require.True(t, g.Deleted, "the test mapping is deleted: %+v", g)
			}

			// CGNAT and double NAT: only where the gateway's address was there to compare.
			switch {
			case c.kind == netlab.None:
				require.False(t, rep.CGNAT.Yes)
			case truth.UPnP:
				require.NotNil(t, rep.CGNAT)
				require.Equal(t, truth.CGNAT, rep.CGNAT.Yes, rep.CGNAT.Reason)
				require.Equal(t, truth.DoubleNAT, rep.Double.Yes, rep.Double.Reason)
			default:
				require.Nil(t, rep.CGNAT, "CGNAT not tested without the gateway's address")
				require.Contains(t, rep.NotTested[len(rep.NotTested)-1], "CGNAT and double NAT")
			}

			// The SIP verdict.
			v := rep.SIP
			direct := c.kind == netlab.None || truth.Mapping == netlab.EndpointIndependent
			mapped := truth.UPnP && !truth.DoubleNAT
			switch {
			case mapped:
				require.Equal(t, agent.ViaPortMapping, v.Decision)
			case direct:
				require.Equal(t, agent.Direct, v.Decision)
			default:
				require.Equal(t, agent.Relay, v.Decision)
				require.True(t, v.Relay)
			}
			require.Equal(t, direct || mapped, v.TwoWayAudio.Works, v.TwoWayAudio.Reason)
			if c.kind != netlab.None {
				require.Positive(t, v.KeepAliveMS)
				if c.lifetime {
					require.Equal(t, n.LifetimeMS/2, v.KeepAliveMS, "half the measured lifetime")
				} else {
					require.Contains(t, v.KeepAliveNote, "assumed")
				}
			}
		})
	}
}

// TestLabNAT64: natcheck on the IPv6-only LAN behind the lab's NAT64, given
// the server by its synthesised IPv6 address (what the DNS64 answers for
// its name), finds the NAT64 prefix (discovery.DetectNAT64: the DNS64
// answers, the router speaks no PCP), runs the behaviour discovery through
// the NAT64, and reports the IPv4 public address and the IPv4 NAT behind
// it, as the lab's truth says.
func TestLabNAT64(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: netlab.IPv6NAT64, Coturn: true})
	truth := lab.Truth()
	srv, err := ipaddr.SynthesizeNAT64(truth.NAT64Prefix, netlab.Server1)
	require.NoError(t, err)
	o := options{
		servers: []netip.AddrPort{netip.AddrPortFrom(srv, netlab.CoturnPort)}, names: []string{"coturn via NAT64"},
		local: netip.AddrPortFrom(netlab.Client6, 0), portMap: true, gateway: netlab.RouterLAN6,
		hostAddrs:    func() []netip.Addr { return []netip.Addr{netlab.Client6} },
		resolver:     lab.Resolver(netlab.LAN),
		listenPacket: lab.ListenPacket(netlab.LAN), dialContext: lab.DialContext(netlab.LAN),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	rep, err := check(ctx, o)
	require.NoError(t, err)
	var text bytes.Buffer
	rep.writeText(&text)
	t.Logf("natcheck said:\n%s", text.String())
	require.NotNil(t, rep.NAT64)
	require.Equal(t, []netip.Prefix{truth.NAT64Prefix}, rep.NAT64.Prefixes)
	require.Equal(t, discovery.FromDNS64, rep.NAT64.From)
	require.Contains(t, text.String(), "NAT64:             prefix "+truth.NAT64Prefix.String()+" (from dns64)")
	require.Equal(t, truth.Public, rep.NAT.Public.Addr(), "the IPv4 address the NAT64 and the NAT behind it give")
	require.Equal(t, nat.MethodRFC5780, rep.NAT.Method, "the alternate IPv4 address reached through the NAT64")
	require.Equal(t, string(truth.Mapping), rep.NAT.Mapping.String())
	require.Equal(t, string(truth.Filtering), rep.NAT.Filtering.String())
	require.Contains(t, rep.IPv6.Note, "through the NAT64")
}

// labServer6 runs sipnat's RFC 5780 server (nat.Server) in the lab's WAN on
// its two IPv6 addresses, ports 3490 and 3491, and returns its primary
// address.
func labServer6(t *testing.T, lab *netlab.Lab) netip.AddrPort {
	t.Helper()
	ls := func(a netip.Addr, p uint16) net.PacketConn {
		return lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(a, p))
	}
	s, err := nat.NewServer(nat.ServerConfig{Primary: ls(netlab.Server1V6, 3490), AltPort: ls(netlab.Server1V6, 3491),
		AltAddr: ls(netlab.Server2V6, 3490), AltBoth: ls(netlab.Server2V6, 3491)})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() { _ = s.Close(); <-done })
	return netip.AddrPortFrom(netlab.Server1V6, 3490)
}
