// Package netlab builds real NATs in network namespaces for sipnat's tests:
// nftables and conntrack NATs of seven kinds (RFC 4787 mapping and filtering),
// hairpinning, binding timeouts, the kernel SIP ALG, miniupnpd (UPnP IGD,
// NAT-PMP, PCP), a carrier-grade NAT in series, stund and coturn STUN
// servers, a kamailio registrar with nathelper (and TLS and RFC 5626
// outbound), a relaying coturn, rtpengine, IPv6 (an RFC 6092 firewall,
// NPTv6, NAT66, NAT64 with DNS64), and random packet loss.
//
// It is a port of the project's shared NAT lab (lab.sh) into Go, so that
// `go test` needs nothing outside the repository but Debian's tools.
//
// # Topology
//
//	LAN 192.168.1.10 --- RTR 192.168.1.1 | 203.0.113.1 --- WAN 203.0.113.2, .3 (+198.51.100.2)
//	with CGNAT:  RTR 100.64.0.2 --- CGN 100.64.0.1 | 203.0.113.1 --- WAN
//	kind None:   LAN 203.0.113.130 --- RTR 203.0.113.129 (routing only)
//	with IPv6:   LAN 2001:db8:1::10 --- RTR 2001:db8:1::1 | 2001:db8:ff::1 --- WAN 2001:db8:ff::2, ::3 (+2001:db8:fe::2)
//
// ICMP redirects and rp_filter are off in every namespace, and IPv6 is off
// unless Config.IPv6 asks for it; no namespace has a route out of the lab,
// so traffic never leaves it.
//
// # Usage
//
//	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMADF, Hairpin: true, Stund: true})
//	conn := lab.ListenUDP(netlab.LAN, netip.MustParseAddrPort("0.0.0.0:5060"))
//	out, err := lab.Command(netlab.LAN, "stun", "203.0.113.2").Output()
//	truth := lab.Truth() // what a correct classifier must say
//
// New skips the test without root or tools, or fails it when
// SIPNAT_LAB=require. Namespaces are named snl<pid>x<n>-<node>, so parallel
// tests (and parallel test binaries) each get their own lab; teardown runs
// from t.Cleanup (also after a failure or panic) and stops every process,
// kills whatever else runs in the namespaces and deletes them. Namespaces a
// killed test binary left behind are removed by the next New.
//
// Sockets are created inside a node by the test process itself (Do,
// ListenUDP, DialContext, ListenPacket: setns on a locked OS thread), so the
// library under test runs in-process; real peers run as child processes
// (Command, Start).
//
// # Concurrency
//
// A Lab's methods may be called from several goroutines.
package netlab
