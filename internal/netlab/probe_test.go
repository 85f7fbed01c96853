package netlab

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reflector answers every UDP packet with the packet's source address as
// text, so a LAN socket learns its mapping without a STUN implementation.
func reflector(t *testing.T, lab *Lab, at netip.AddrPort) {
	c := lab.ListenUDP(WAN, at)
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort([]byte(from.String()), from)
		}
	}()
}

// mappedVia sends a packet from c to the reflector at to and returns the
// source address the reflector saw.
func mappedVia(t *testing.T, c *net.UDPConn, to netip.AddrPort) netip.AddrPort {
	t.Helper()
	buf := make([]byte, 100)
	for try := 0; try < 5; try++ {
		_, err := c.WriteToUDPAddrPort([]byte("?"), to)
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if isTimeout(err) {
			continue
		}
		require.NoError(t, err)
		if from != to {
			continue
		}
		return netip.MustParseAddrPort(string(buf[:n]))
	}
	t.Fatalf("no answer from reflector %s", to)
	return netip.AddrPort{}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// receive waits up to wait for a packet with payload want on c and reports
// whether it arrived, and from where.
func receive(c *net.UDPConn, want string, wait time.Duration) (netip.AddrPort, bool) {
	buf := make([]byte, 1500)
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return netip.AddrPort{}, false
		}
		if string(buf[:n]) == want {
			return from, true
		}
	}
}

// inbound reports whether a packet sent from src (on the WAN) to
// 203.0.113.1:port reaches a socket listening on port in the LAN. A fresh
// source port each time keeps earlier conntrack entries out of the way.
func inbound(t *testing.T, lab *Lab, src netip.AddrPort, port uint16, label string) bool {
	t.Helper()
	rx := lab.ListenUDP(LAN, netip.AddrPortFrom(netip.IPv4Unspecified(), port))
	defer rx.Close()
	tx := lab.ListenUDP(WAN, src)
	defer tx.Close()
	to := netip.AddrPortFrom(lab.Truth().Public, port)
	for i := 0; i < 3; i++ { // three tries: robust against nothing but loss, which these labs do not have
		_, err := tx.WriteToUDPAddrPort([]byte(label), to)
		require.NoError(t, err)
		if _, ok := receive(rx, label, 400*time.Millisecond); ok {
			return true
		}
	}
	return false
}

// field returns the text after prefix on the first line that starts with
// it (after trimming spaces), or "".
func field(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
	}
	return ""
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// runTool runs a client tool inside node and returns its output; the test
// fails if it keeps failing. upnpc finds the IGD by SSDP with a fixed 2 s
// wait, which a loaded machine can miss, so a failed run is tried again,
// twice at most.
func runTool(t *testing.T, lab *Lab, node Node, name string, args ...string) string {
	t.Helper()
	var out []byte
	var err error
	for try := 0; try < 3; try++ {
		if out, err = lab.Command(node, name, args...).CombinedOutput(); err == nil {
			break
		}
		t.Logf("%s %v (try %d): %v: %s", name, args, try+1, err, out)
	}
	require.NoError(t, err, "%s %v: %s", name, args, out)
	return string(out)
}
