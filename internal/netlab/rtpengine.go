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
	Ports [2]int         // its media port range
	Proc  *Proc
}

// StartRtpengine starts rtpengine in node with its ng listener on ng and
// media ports lo..hi on media, and waits until the ng port is bound. It is
// stopped and reaped at cleanup (or earlier with Proc.Stop, as a crash
// would). The test fails if it cannot start.
func (l *Lab) StartRtpengine(node Node, ng netip.AddrPort, media netip.Addr, lo, hi int) *Rtpengine {
	l.t.Helper()
	name := fmt.Sprintf("rtpengine-%d", ng.Port())
	pid := filepath.Join(l.dir, name+".pid")
	p, err := l.start(node, name, "rtpengine",
		"--config-file=none", "--table=-1", "--foreground", "--log-stderr", "--no-log-timestamps",
		"--log-level=6", "--pidfile="+pid,
		"--interface="+media.String(), "--listen-ng="+ng.String(),
		"--port-min="+strconv.Itoa(lo), "--port-max="+strconv.Itoa(hi),
		"--num-threads=2", "--timeout=60", "--delete-delay=0")
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	if err := l.waitListen(node, "udp", 10*time.Second, int(ng.Port())); err != nil {
		l.t.Fatalf("netlab: rtpengine: %v\n%s", err, tail(p.Output()))
	}
	return &Rtpengine{NG: ng, Media: media, Ports: [2]int{lo, hi}, Proc: p}
}
