package netlab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

var (
	lanNet  = netip.MustParsePrefix("192.168.1.0/24")
	openNet = netip.MustParsePrefix("203.0.113.128/25")
)

// ip runs one `ip` command.
func ip(args ...string) error { return run(exec.Command("ip", args...)) }

// build makes the namespaces, links, addresses, routes, sysctls, NAT rules
// and services. Any error leaves the half-built lab to teardown.
func (l *Lab) build() error {
	c := l.cfg
	for _, node := range l.nodes() {
		if err := ip("netns", "add", l.nsName(node)); err != nil {
			return err
		}
		kv := map[string]string{
			"net/ipv4/conf/all/send_redirects":       "0",
			"net/ipv4/conf/default/send_redirects":   "0",
			"net/ipv4/conf/all/accept_redirects":     "0",
			"net/ipv4/conf/default/accept_redirects": "0",
			"net/ipv4/conf/all/rp_filter":            "0",
			"net/ipv4/conf/default/rp_filter":        "0",
		}
		l.ipv6Sysctls(node, kv)
		if err := l.sysctl(node, kv); err != nil {
			return err
		}
	}
	lan, rtr, cgn, wan := l.nsName(LAN), l.nsName(RTR), l.nsName(CGN), l.nsName(WAN)
	cmds := [][]string{
		{"-n", lan, "link", "set", "lo", "up"},
		{"-n", rtr, "link", "set", "lo", "up"},
		{"-n", wan, "link", "set", "lo", "up"},
		{"-n", lan, "link", "add", "eth0", "type", "veth", "peer", "name", "lan0", "netns", rtr},
	}
	if c.CGNAT {
		cmds = append(cmds,
			[]string{"-n", cgn, "link", "set", "lo", "up"},
			[]string{"-n", rtr, "link", "add", "wan0", "type", "veth", "peer", "name", "in0", "netns", cgn},
			[]string{"-n", cgn, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", wan})
	} else {
		cmds = append(cmds, []string{"-n", rtr, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", wan})
	}
	switch {
	case c.IPv6 == IPv6NAT64:
		cmds = append(cmds, // an IPv6-only LAN
			[]string{"-n", rtr, "addr", "add", RouterLAN.String() + "/24", "dev", "lan0"},
			[]string{"-n", lan, "link", "set", "eth0", "up"})
	case c.Kind == None:
		cmds = append(cmds,
			[]string{"-n", lan, "addr", "add", OpenClient.String() + "/25", "dev", "eth0"},
			[]string{"-n", rtr, "addr", "add", OpenRouter.String() + "/25", "dev", "lan0"},
			[]string{"-n", lan, "link", "set", "eth0", "up"},
			[]string{"-n", lan, "route", "add", "default", "via", OpenRouter.String()})
	default:
		cmds = append(cmds,
			[]string{"-n", lan, "addr", "add", Client.String() + "/24", "dev", "eth0"},
			[]string{"-n", rtr, "addr", "add", RouterLAN.String() + "/24", "dev", "lan0"},
			[]string{"-n", lan, "link", "set", "eth0", "up"},
			[]string{"-n", lan, "route", "add", "default", "via", RouterLAN.String()})
	}
	cmds = append(cmds,
		[]string{"-n", rtr, "link", "set", "lan0", "up"},
		[]string{"-n", wan, "addr", "add", Server1.String() + "/25", "dev", "eth0"},
		[]string{"-n", wan, "addr", "add", Server2.String() + "/25", "dev", "eth0"},
		[]string{"-n", wan, "addr", "add", Peer.String() + "/32", "dev", "lo"},
		[]string{"-n", wan, "link", "set", "eth0", "up"})
	if c.CGNAT {
		router, inside, inside2 := c.outerAddrs()
		cmds = append(cmds,
			[]string{"-n", rtr, "addr", "add", router.String() + "/24", "dev", "wan0"},
			[]string{"-n", cgn, "addr", "add", inside.String() + "/24", "dev", "in0"},
			[]string{"-n", cgn, "addr", "add", inside2.String() + "/24", "dev", "in0"},
			[]string{"-n", cgn, "addr", "add", Public.String() + "/25", "dev", "wan0"},
			[]string{"-n", rtr, "link", "set", "wan0", "up"},
			[]string{"-n", cgn, "link", "set", "in0", "up"},
			[]string{"-n", cgn, "link", "set", "wan0", "up"},
			[]string{"-n", rtr, "route", "add", "default", "via", inside.String()},
			[]string{"-n", cgn, "route", "add", "default", "via", Server1.String()})
	} else {
		cmds = append(cmds,
			[]string{"-n", rtr, "addr", "add", Public.String() + "/25", "dev", "wan0"},
			[]string{"-n", rtr, "link", "set", "wan0", "up"},
			[]string{"-n", rtr, "route", "add", "default", "via", Server1.String()})
	}
	if c.Kind == None {
		cmds = append(cmds, []string{"-n", wan, "route", "add", openNet.String(), "via", Public.String()})
	}
	for _, args := range cmds {
		if err := ip(args...); err != nil {
			return err
		}
	}
	if err := l.sysctl(RTR, map[string]string{"net/ipv4/ip_forward": "1"}); err != nil {
		return err
	}
	if c.IPv6 != IPv6Off {
		if err := l.sysctl(RTR, map[string]string{"net/ipv6/conf/all/forwarding": "1"}); err != nil {
			return err
		}
	}
	if c.IPv6 == IPv6NAT64 {
		if err := l.startTayga(); err != nil {
			return err
		}
	}
	for _, args := range l.ipv6Commands() {
		if err := ip(args...); err != nil {
			return err
		}
	}
	if c.CGNAT {
		if err := l.sysctl(CGN, map[string]string{"net/ipv4/ip_forward": "1"}); err != nil {
			return err
		}
	}
	if err := l.loadRules(RTR, l.routerBox()); err != nil {
		return err
	}
	if c.CGNAT {
		if err := l.loadRules(CGN, l.cgnBox()); err != nil {
			return err
		}
	}
	if err := l.tcpTimeouts(); err != nil {
		return err
	}
	if c.Timeout > 0 {
		secs := fmt.Sprint(int(c.Timeout.Seconds()))
		if err := l.sysctl(RTR, map[string]string{
			"net/netfilter/nf_conntrack_udp_timeout":        secs,
			"net/netfilter/nf_conntrack_udp_timeout_stream": secs,
		}); err != nil {
			return err
		}
	}
	return l.startServices()
}

func (l *Lab) routerBox() natBox {
	c := l.cfg
	b := natBox{inIf: "lan0", outIf: "wan0", inNet: lanNet, ext: Public, kind: c.Kind,
		hairpin: c.Hairpin, alg: c.ALG, upnp: c.UPnP, timeoutSec: 30, lossPercent: c.LossPercent,
		portRange: l.portRange}
	if c.Kind == None {
		b.inNet = openNet
	}
	if c.IPv6 == IPv6NAT64 {
		b.inIf, b.inNet = nat64Tun, nat64Pool
	}
	b.v6 = l.routerIPv6Rules()
	if c.CGNAT {
		b.ext, _, _ = c.outerAddrs()
	}
	if c.Timeout > 0 {
		b.timeoutSec = int(c.Timeout.Seconds())
	}
	return b
}

func (l *Lab) cgnBox() natBox {
	_, inside, _ := l.cfg.outerAddrs()
	return natBox{inIf: "in0", outIf: "wan0", inNet: netip.PrefixFrom(inside, 24).Masked(), ext: Public, kind: l.cfg.CGNKind,
		hairpin: l.cfg.Hairpin, timeoutSec: 30}
}

// loadRules writes the box's ruleset to Dir and loads it into node, replacing
// the lab's table atomically if it exists.
func (l *Lab) loadRules(node Node, b natBox) error {
	path := filepath.Join(l.dir, string(node)+".nft")
	text := "table inet labnat\ndelete table inet labnat\n" + b.rules()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	return run(nsCommand(l.nsName(node), "nft", "-f", path))
}

// sysctl sets /proc/sys values inside node (keys use slashes).
func (l *Lab) sysctl(node Node, kv map[string]string) error {
	return l.Do(node, func() error {
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0); err != nil {
				return fmt.Errorf("sysctl %s=%s in %s: %w", strings.ReplaceAll(k, "/", "."), v, node, err)
			}
		}
		return nil
	})
}

// Sysctl reads a /proc/sys value (dotted name) inside node.
func (l *Lab) Sysctl(node Node, name string) (string, error) {
	var v string
	err := l.Do(node, func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// tcpTimeouts makes the NAT boxes forget idle TCP connections after
// Config.TCPTimeout and never adopt a connection they do not know (a
// packet of a forgotten connection is dropped, as after a reboot).
func (l *Lab) tcpTimeouts() error {
	kv := map[string]string{"net/netfilter/nf_conntrack_tcp_loose": "0"}
	if l.cfg.TCPTimeout > 0 {
		kv["net/netfilter/nf_conntrack_tcp_timeout_established"] = fmt.Sprint(int(l.cfg.TCPTimeout.Seconds()))
	}
	nodes := []Node{RTR}
	if l.cfg.CGNAT {
		nodes = append(nodes, CGN)
	}
	for _, n := range nodes {
		if err := l.sysctl(n, kv); err != nil {
			return err
		}
	}
	return nil
}
