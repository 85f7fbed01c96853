package netlab

import "fmt"

// FlushConntrack deletes every conntrack entry of the home router (and of the
// CGN, if there is one): every NAT binding is forgotten at once, as after a
// router reboot that kept its rules.
func (l *Lab) FlushConntrack() {
	l.t.Helper()
	nodes := []Node{RTR}
	if l.cfg.CGNAT {
		nodes = append(nodes, CGN)
	}
	for _, n := range nodes {
		// conntrack -F exits non-zero when the table is already empty
		_ = run(l.Command(n, "conntrack", "-F"))
	}
}

// SetNATPortRange reloads the home router's rules so that source NAT picks
// external UDP ports from lo-hi (eim and apdm kinds; adm-apdf keeps its
// hash). It replaces the lab's table: learned full-cone bindings and
// miniupnpd's rules are dropped too. Existing conntrack entries keep their
// ports until they expire or FlushConntrack removes them.
func (l *Lab) SetNATPortRange(lo, hi uint16) {
	l.t.Helper()
	if lo == 0 || hi < lo {
		l.t.Fatalf("netlab: bad port range %d-%d", lo, hi)
	}
	l.mu.Lock()
	l.portRange = [2]uint16{lo, hi}
	l.mu.Unlock()
	if err := l.loadRules(RTR, l.routerBox()); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
}

// String renders the truth like the shared lab's `lab.sh truth`.
func (t Truth) String() string {
	timeout := "default"
	if t.Timeout > 0 {
		timeout = t.Timeout.String()
	}
	return fmt.Sprintf("mapping=%s filtering=%s hairpin=%t upnp=%t cgnat=%t kind=%s alg=%t timeout=%s port_preservation=%t client=%s public=%s router_wan=%s",
		t.Mapping, t.Filtering, t.Hairpin, t.UPnP, t.CGNAT, t.Kind, t.ALG, timeout, t.PortPreservation, t.Client, t.Public, t.RouterWAN) + t.ipv6String()
}

// Outage makes the home router forward nothing while on (a reboot's
// downtime, a dead uplink): packets between the LAN and the WAN are
// dropped in both directions, and its conntrack entries age as they would.
// Outage(false) forwards again. The router's own services still answer.
func (l *Lab) Outage(on bool) {
	l.t.Helper()
	cmds := []string{"delete table inet netlaboutage"}
	if on {
		cmds = []string{"add table inet netlaboutage",
			"add chain inet netlaboutage forward { type filter hook forward priority -10; policy drop; }"}
	}
	for _, cmd := range cmds {
		if out, err := l.Command(RTR, "nft", cmd).CombinedOutput(); err != nil {
			l.t.Fatalf("netlab: outage %t: %v: %s", on, err, out)
		}
	}
}
