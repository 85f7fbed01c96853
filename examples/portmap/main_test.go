package main

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/stretchr/testify/require"
)

// TestPortmapInLab runs the command inside the lab's LAN against
// miniupnpd: it prints the public address, the port delivers, the lease is
// renewed, and SIGTERM removes the mapping.
func TestPortmapInLab(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, UPnP: true, UPnPMinLifetime: 2})
	gobin, err := exec.LookPath("go")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "portmap")
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	for i, proto := range []string{"pcp", "natpmp", "upnp"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			port := uint16(46060 + i)
			rx := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netip.IPv4Unspecified(), port))
			p := lab.Start(netlab.LAN, bin, "-gateway", netlab.RouterLAN.String(), "-port", itoa(port),
				"-proto", proto, "-lifetime", "4s", "-json")
			waitOutput(t, p, `"public":"203.0.113.1:`+itoa(port)+`"`)
			require.True(t, delivered(t, lab, rx, port, 30000+uint16(i)*10), "dropped while mapped")
			waitOutput(t, p, `"kind":"renewed"`)
			p.Stop(5 * time.Second)
			require.Contains(t, p.Output(), `"kind":"deleted"`, p.Output())
			require.False(t, delivered(t, lab, rx, port, 30001+uint16(i)*10), "delivered after exit")
		})
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func waitOutput(t *testing.T, p *netlab.Proc, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.Output(), want) {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("no %s in output:\n%s", want, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// delivered sends from a fresh WAN socket to the public port and reports
// whether rx got it.
func delivered(t *testing.T, lab *netlab.Lab, rx *net.UDPConn, public, srcPort uint16) bool {
	t.Helper()
	tx := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Server1, srcPort))
	defer tx.Close()
	msg := []byte("probe " + tx.LocalAddr().String())
	buf := make([]byte, 256)
	for try := 0; try < 3; try++ {
		_, err := tx.WriteToUDPAddrPort(msg, netip.AddrPortFrom(netlab.Public, public))
		require.NoError(t, err)
		require.NoError(t, rx.SetReadDeadline(time.Now().Add(250*time.Millisecond)))
		for {
			n, _, err := rx.ReadFromUDPAddrPort(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			require.NoError(t, err)
			if string(buf[:n]) == string(msg) {
				return true
			}
		}
	}
	return false
}
