package netlab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"
)

// Rtpengine is an rtpengine media relay the lab started (Debian's
// rtpengine-daemon in user space: no kernel module, --table=-1).
type Rtpengine struct {
	NG    netip.AddrPort // its ng control address
	Media netip.Addr     // the address it relays media on
	// Media6 is its IPv6 media address in a dual-stack lab (the IPv6 twin
	// of Media, Server1V6 for Server1), invalid otherwise. Both are one
	// logical interface: rtpengine relays a leg on the family of that
	// leg's SDP, or of the "address family" flag.
	Media6 netip.Addr
	Ports  [2]int // its media port range
	Proc   *Proc
}

// v6Twin is the IPv6 address of the WAN host that a in this lab also has,
// or the zero Addr: with IPv6 (not NAT64), Server1 and Server2 have
// Server1V6 and Server2V6.
func (l *Lab) v6Twin(a netip.Addr) netip.Addr {
	if l.cfg.IPv6 == IPv6Off || l.cfg.IPv6 == IPv6NAT64 {
		return netip.Addr{}
	}
	switch a {
	case Server1:
		return Server1V6
	case Server2:
		return Server2V6
	}
	return netip.Addr{}
}

// StartRtpengine starts rtpengine in node with its ng listener on ng and
// media ports lo..hi on media, and waits until the ng port is bound. It is
// stopped and reaped at cleanup (or earlier with Proc.Stop, as a crash
// would). The test fails if it cannot start. In a dual-stack lab a WAN
// server address (Server1, Server2) comes with its IPv6 twin as a second
// address of the same interface (rtpengine's --interface takes either
// family), so it relays IPv6 legs too.
func (l *Lab) StartRtpengine(node Node, ng netip.AddrPort, media netip.Addr, lo, hi int) *Rtpengine {
	l.t.Helper()
	name := fmt.Sprintf("rtpengine-%d", ng.Port())
	pid := filepath.Join(l.dir, name+".pid")
	args := []string{"--config-file=none", "--table=-1", "--foreground", "--log-stderr", "--no-log-timestamps",
		"--log-level=6", "--pidfile=" + pid, "--interface=" + media.String()}
	media6 := netip.Addr{}
	if node == WAN {
		media6 = l.v6Twin(media)
	}
	if media6.IsValid() {
		args = append(args, "--interface="+media6.String())
	}
	args = append(args, "--listen-ng="+ng.String(), "--port-min="+strconv.Itoa(lo), "--port-max="+strconv.Itoa(hi),
		"--num-threads=2", "--timeout=60", "--delete-delay=0")
	p, err := l.start(node, name, "rtpengine", args...)
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	if err := l.waitListen(node, "udp", 10*time.Second, int(ng.Port())); err != nil {
		l.t.Fatalf("netlab: rtpengine: %v\n%s", err, tail(p.Output()))
	}
	return &Rtpengine{NG: ng, Media: media, Media6: media6, Ports: [2]int{lo, hi}, Proc: p}
}
