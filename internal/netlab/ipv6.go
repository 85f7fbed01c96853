package netlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// IPv6Mode says what IPv6 the lab has. The zero value keeps IPv6 disabled
// in every namespace, as the IPv4-only lab always was.
type IPv6Mode string

// The IPv6 modes. Every mode but NAT64 is dual-stack: the IPv4 NAT of
// Config.Kind stays as it is beside the IPv6 path.
const (
	// IPv6Off: no IPv6 anywhere.
	IPv6Off IPv6Mode = ""
	// IPv6Firewall: the LAN has the routed prefix 2001:db8:1::/64 and the
	// router is an RFC 6092 stateful firewall: outbound flows are allowed,
	// inbound packets only when they belong to one (conntrack state, which
	// Config.Timeout shortens like the IPv4 bindings) or to a pinhole
	// miniupnpd opened (UPnP IGDv2 WANIPv6FirewallControl, PCP MAP).
	IPv6Firewall IPv6Mode = "firewall"
	// IPv6NPT: the firewall plus prefix translation of 2001:db8:1::/64 to
	// 2001:db8:2::/64 in the spirit of RFC 6296 (the interface identifier
	// and ports are kept; nftables does it statefully, not checksum-neutrally).
	IPv6NPT IPv6Mode = "nptv6"
	// IPv6NAT66: the firewall plus masquerading to the router's WAN address.
	IPv6NAT66 IPv6Mode = "nat66"
	// IPv6NAT64: the LAN is IPv6-only; tayga on the router translates
	// NAT64Prefix to IPv4 (RFC 6145/6146 with RFC 6052 addresses), whose
	// pool addresses the router's IPv4 NAT of Config.Kind then translates
	// to Public; unbound on RouterLAN6:53 is a DNS64 (RFC 6147) that
	// synthesises AAAA records, ipv4only.arpa (RFC 7050) among them. The
	// WAN is IPv4-only.
	IPv6NAT64 IPv6Mode = "nat64"
)

// IPv6 addresses of the lab: documentation addresses (RFC 3849) that exist
// only inside the lab's namespaces.
var (
	Client6     = netip.MustParseAddr("2001:db8:1::10")     // the UA, LAN side
	RouterLAN6  = netip.MustParseAddr("2001:db8:1::1")      // the router, LAN side (gateway, miniupnpd, DNS64)
	RouterWAN6  = netip.MustParseAddr("2001:db8:ff::1")     // the router, WAN side (the NAT66 public address)
	Server1V6   = netip.MustParseAddr("2001:db8:ff::2")     // WAN server, primary IPv6 address
	Server2V6   = netip.MustParseAddr("2001:db8:ff::3")     // WAN server, alternate IPv6 address
	Peer6       = netip.MustParseAddr("2001:db8:fe::2")     // another WAN peer
	NPTClient   = netip.MustParseAddr("2001:db8:2::10")     // Client6 after prefix translation
	NAT64Prefix = netip.MustParsePrefix("2001:db8:64::/96") // the NAT64's network-specific prefix (RFC 6052)
	// DNS64 is where unbound answers with DNS64 in the NAT64 lab.
	DNS64 = netip.AddrPortFrom(RouterLAN6, 53)
	// IPv4Only are the addresses of ipv4only.arpa (RFC 7050) the DNS64 synthesises from.
	IPv4Only = []netip.Addr{netip.MustParseAddr("192.0.0.170"), netip.MustParseAddr("192.0.0.171")}
)

var (
	lan6Net   = netip.MustParsePrefix("2001:db8:1::/64")  // the LAN's prefix
	npt6Net   = netip.MustParsePrefix("2001:db8:2::/64")  // the LAN's prefix after NPTv6
	peer6Net  = netip.MustParsePrefix("2001:db8:fe::/64") // the peer's network
	nat64Pool = netip.MustParsePrefix("192.168.255.0/24") // tayga's dynamic IPv4 pool
	taygaAddr = netip.MustParseAddr("192.168.255.1")      // tayga's own IPv4 address
)

const nat64Tun = "nat64" // tayga's tun device on the router

// ipv6Sysctls are the per-node IPv6 settings: off without IPv6 (and on
// nodes a mode leaves IPv4-only), else on without router advertisements or
// duplicate address detection (static addresses, usable at once).
func (l *Lab) ipv6Sysctls(node Node, kv map[string]string) {
	off := "1"
	if l.cfg.IPv6 != IPv6Off && !(l.cfg.IPv6 == IPv6NAT64 && node == WAN) {
		off = "0"
		for _, dev := range []string{"all", "default"} {
			kv["net/ipv6/conf/"+dev+"/accept_ra"] = "0"
			kv["net/ipv6/conf/"+dev+"/accept_dad"] = "0"
			kv["net/ipv6/conf/"+dev+"/autoconf"] = "0"
		}
	}
	kv["net/ipv6/conf/all/disable_ipv6"] = off
	kv["net/ipv6/conf/default/disable_ipv6"] = off
}

// ipv6Commands are the `ip` commands that give the links their IPv6
// addresses and routes.
func (l *Lab) ipv6Commands() [][]string {
	lan, rtr, wan := l.nsName(LAN), l.nsName(RTR), l.nsName(WAN)
	c := l.cfg
	if c.IPv6 == IPv6Off {
		return nil
	}
	cmds := [][]string{
		{"-n", lan, "addr", "add", Client6.String() + "/64", "dev", "eth0", "nodad"},
		{"-n", rtr, "addr", "add", RouterLAN6.String() + "/64", "dev", "lan0", "nodad"},
		{"-n", lan, "-6", "route", "add", "default", "via", RouterLAN6.String()},
	}
	if c.IPv6 == IPv6NAT64 {
		return append(cmds, []string{"-n", rtr, "-6", "route", "add", NAT64Prefix.String(), "dev", nat64Tun},
			[]string{"-n", rtr, "route", "add", nat64Pool.String(), "dev", nat64Tun})
	}
	cmds = append(cmds,
		[]string{"-n", rtr, "addr", "add", RouterWAN6.String() + "/64", "dev", "wan0", "nodad"},
		[]string{"-n", wan, "addr", "add", Server1V6.String() + "/64", "dev", "eth0", "nodad"},
		[]string{"-n", wan, "addr", "add", Server2V6.String() + "/64", "dev", "eth0", "nodad"},
		[]string{"-n", wan, "addr", "add", Peer6.String() + "/128", "dev", "lo", "nodad"},
		[]string{"-n", rtr, "-6", "route", "add", peer6Net.String(), "via", Server1V6.String()})
	switch c.IPv6 {
	case IPv6Firewall:
		cmds = append(cmds, []string{"-n", wan, "-6", "route", "add", lan6Net.String(), "via", RouterWAN6.String()})
	case IPv6NPT:
		cmds = append(cmds, []string{"-n", wan, "-6", "route", "add", npt6Net.String(), "via", RouterWAN6.String()})
	}
	return cmds
}

// ipv6Rules are the router's IPv6 additions to its ruleset: forward rules
// that come after miniupnpd's pinholes and before the IPv4 kind's inbound
// rules, and the translation rules of NPTv6 and NAT66.
type ipv6Rules struct {
	forward, prerouting, postrouting []string
}

func (l *Lab) routerIPv6Rules() ipv6Rules {
	var r ipv6Rules
	switch l.cfg.IPv6 {
	case IPv6Off:
		return r
	case IPv6NAT64:
		// The IPv4 NAT behind tayga does the filtering; the IPv6 leg
		// between the LAN and tayga passes.
		r.forward = []string{
			fmt.Sprintf("iifname %q oifname %q meta nfproto ipv6 accept", "lan0", nat64Tun),
			fmt.Sprintf("iifname %q oifname %q meta nfproto ipv6 accept", nat64Tun, "lan0"),
		}
		return r
	}
	r.forward = []string{
		// RFC 6092 REC-11/12: errors about a flow pass (conntrack's related, above);
		// everything else inbound that no flow or pinhole allows is dropped.
		fmt.Sprintf("iifname %q oifname %q meta nfproto ipv6 counter drop", "wan0", "lan0"),
	}
	switch l.cfg.IPv6 {
	case IPv6NPT:
		r.prerouting = []string{fmt.Sprintf("iifname %q ip6 daddr %s dnat ip6 prefix to %s", "wan0", npt6Net, lan6Net)}
		r.postrouting = []string{fmt.Sprintf("oifname %q ip6 saddr %s snat ip6 prefix to %s", "wan0", lan6Net, npt6Net)}
	case IPv6NAT66:
		r.postrouting = []string{fmt.Sprintf("oifname %q ip6 saddr %s masquerade", "wan0", lan6Net)}
	}
	return r
}

// public6 is the client's IPv6 address as the WAN sees it.
func public6(m IPv6Mode) netip.Addr {
	switch m {
	case IPv6Firewall:
		return Client6
	case IPv6NPT:
		return NPTClient
	case IPv6NAT66:
		return RouterWAN6
	}
	return netip.Addr{}
}

// startTayga creates tayga's tun device, routes the NAT64 prefix and the
// pool through it and starts tayga in the foreground.
func (l *Lab) startTayga() error {
	d := filepath.Join(l.dir, "tayga")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf("# generated by netlab\ntun-device %s\nipv4-addr %s\nprefix %s\ndynamic-pool %s\ndata-dir %s\n",
		nat64Tun, taygaAddr, NAT64Prefix, nat64Pool, d)
	path := filepath.Join(d, "tayga.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	if err := run(l.Command(RTR, "tayga", "-c", path, "--mktun")); err != nil {
		return err
	}
	if err := ip("-n", l.nsName(RTR), "link", "set", nat64Tun, "up"); err != nil {
		return err
	}
	if _, err := l.service(RTR, "tayga", "tayga", "-c", path, "-n"); err != nil {
		return err
	}
	return nil
}

// startDNS64 runs unbound on RouterLAN6:53 with the dns64 module and the
// prefix NAT64Prefix. It has no upstream: an auth-zone for ipv4only.arpa
// (RFC 7050) and one for lab.example (the lab's IPv4 hosts) feed its
// iterator, so the dns64 module synthesises AAAA records from their A records.
func (l *Lab) startDNS64() error {
	d := filepath.Join(l.dir, "unbound")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	soa := "@ 3600 IN SOA ns.lab.example. host.lab.example. 1 3600 600 86400 60\n@ 3600 IN NS ns.lab.example.\n"
	v4only := "$ORIGIN ipv4only.arpa.\n" + soa
	for _, a := range IPv4Only {
		v4only += "@ 3600 IN A " + a.String() + "\n"
	}
	lab := "$ORIGIN lab.example.\n" + soa + "ns 3600 IN A " + taygaAddr.String() + "\n" +
		"@ 3600 IN A " + Server1.String() + "\nsip 3600 IN A " + Server1.String() + "\n" +
		"stun 3600 IN A " + Server1.String() + "\npeer 3600 IN A " + Peer.String() + "\n"
	files := map[string]string{"ipv4only.arpa.zone": v4only, "lab.example.zone": lab}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	conf := fmt.Sprintf(`# generated by netlab
server:
  interface: %s
  port: %d
  do-ip4: yes
  do-ip6: yes
  access-control: ::/0 allow
  chroot: ""
  username: ""
  directory: "%s"
  pidfile: "%s/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  module-config: "dns64 iterator"
  dns64-prefix: %s
  do-not-query-localhost: no
  harden-dnssec-stripped: no
remote-control:
  control-enable: no
`, DNS64.Addr(), DNS64.Port(), d, d, NAT64Prefix)
	for _, zone := range []string{"ipv4only.arpa", "lab.example"} {
		conf += fmt.Sprintf("auth-zone:\n  name: %q\n  zonefile: %q\n  for-downstream: no\n  for-upstream: yes\n",
			zone+".", filepath.Join(d, zone+".zone"))
	}
	path := filepath.Join(d, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	if _, err := l.service(RTR, "unbound", "unbound", "-d", "-c", path); err != nil {
		return err
	}
	return l.waitListen(RTR, "udp", 10*time.Second, int(DNS64.Port()))
}

// Resolver returns a resolver whose queries go from node to the lab's DNS64
// (the NAT64 lab only).
func (l *Lab) Resolver(node Node) *net.Resolver {
	dial := l.DialContext(node)
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		if strings.HasPrefix(network, "tcp") {
			return dial(ctx, "tcp6", DNS64.String())
		}
		return dial(ctx, "udp6", DNS64.String())
	}}
}

// miniupnpdIPv6Conf is what miniupnpd's config gets in the firewall lab:
// its IPv6 listening address (PCP over IPv6 and the IGDv2 pinhole service).
func (l *Lab) miniupnpdIPv6Conf() string {
	if l.cfg.IPv6 != IPv6Firewall {
		return "ipv6_disable=yes\n"
	}
	return "ipv6_listening_ip=" + RouterLAN6.String() + "\next_ifname6=wan0\n"
}

// dualStack reports whether the WAN servers have IPv6 addresses.
func (l *Lab) dualStack() bool { return l.cfg.IPv6 != IPv6Off && l.cfg.IPv6 != IPv6NAT64 }

func (t Truth) ipv6String() string {
	switch t.IPv6 {
	case IPv6Off:
		return ""
	case IPv6NAT64:
		return fmt.Sprintf(" ipv6=%s client6=%s nat64_prefix=%s", t.IPv6, t.Client6, t.NAT64Prefix)
	}
	return fmt.Sprintf(" ipv6=%s client6=%s public6=%s mapping6=%s filtering6=%s", t.IPv6, t.Client6, t.Public6, t.Mapping6, t.Filtering6)
}
