package netlab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
)

var nftCounterRe = regexp.MustCompile(`counter packets (\d+)`)

// CountUDP starts counting, with an nftables counter in node, the UDP
// packets that reach dst on ports (a port or a range, "6000" or
// "6000-6010"), and returns a function that reads the count. RTP tests use
// it to count media on both sides of a call without touching the sockets.
func (l *Lab) CountUDP(node Node, dst netip.Addr, ports string) func() int64 {
	l.t.Helper()
	l.mu.Lock()
	l.seq++
	chain := fmt.Sprintf("c%d", l.seq)
	l.mu.Unlock()
	nft := func(args ...string) string {
		out, err := l.Command(node, "nft", args...).CombinedOutput()
		if err != nil {
			l.t.Fatalf("netlab: nft %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	nft("add table inet netlabcount")
	nft("add chain inet netlabcount " + chain + " { type filter hook input priority 0; policy accept; }")
	family := "ip"
	if dst.Is6() {
		family = "ip6"
	}
	nft("add rule inet netlabcount " + chain + " " + family + " daddr " + dst.String() + " udp dport " + ports + " counter")
	return func() int64 {
		var n int64
		if m := nftCounterRe.FindStringSubmatch(nft("list chain inet netlabcount " + chain)); m != nil {
			n, _ = strconv.ParseInt(m[1], 10, 64)
		}
		return n
	}
}
