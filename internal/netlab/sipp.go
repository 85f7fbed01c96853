package netlab

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

//go:embed uac.xml
var uacScenario []byte

// SippCall has sipp on the WAN address peer (Peer, or Peer6 for IPv6)
// call user through kamailio at registrar (Server1, or Server1V6), wait
// for the answer, stream 2.5 s of PCMU silence from port 6000 and hang up.
// It returns how many UDP packets reached sipp's media port (the callee's
// RTP) and sipp's error with the end of its output.
func (l *Lab) SippCall(user string, peer, registrar netip.Addr) (int64, error) {
	l.t.Helper()
	received := l.CountUDP(WAN, peer, "6000")
	if err := os.WriteFile(filepath.Join(l.dir, "uac.xml"), uacScenario, 0o644); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(l.dir, "audio.ulaw"), bytes.Repeat([]byte{0xff}, 8000*3), 0o644); err != nil {
		return 0, err
	}
	sipp := l.Command(WAN, "timeout", "30", "sipp", netip.AddrPortFrom(registrar, KamailioPort).String(), "-sf", "uac.xml", "-s", user,
		"-i", peer.String(), "-p", "5080", "-mi", peer.String(), "-mp", "6000", "-m", "1",
		"-nostdin", "-timeout", "25s", "-timeout_error")
	out, err := sipp.CombinedOutput()
	if err != nil {
		if len(out) > 3000 {
			out = out[len(out)-3000:]
		}
		err = fmt.Errorf("sipp: %w\n%s", err, out)
	}
	return received(), err
}
