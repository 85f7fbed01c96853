package nat

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
)

// spoofUDP sends payload to dst from the forged source src through a raw
// socket (the kernel fills the IP checksum; the UDP checksum is left 0,
// which IPv4 allows).
func spoofUDP(fd int, src, dst netip.AddrPort, payload []byte) error {
	pkt := make([]byte, 28+len(payload))
	pkt[0], pkt[8], pkt[9] = 0x45, 64, syscall.IPPROTO_UDP
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:16], s4[:])
	copy(pkt[16:20], d4[:])
	binary.BigEndian.PutUint16(pkt[20:], src.Port())
	binary.BigEndian.PutUint16(pkt[22:], dst.Port())
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload)))
	copy(pkt[28:], payload)
	return syscall.Sendto(fd, pkt, 0, &syscall.SockaddrInet4{Addr: d4})
}

// TestLabReflectorFlood: a host in the lab floods our STUN server with
// bare 20-byte Binding requests whose source is forged to a victim's
// address, and to hundreds of other addresses. The victim receives at most
// Burst answers plus Rate per second, each at most MaxAnswerSize bytes,
// and the server answers at most TotalRate per second for all forged
// sources together.
func TestLabReflectorFlood(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.None})
	const rate, burst, total = 50, 20, 300
	srvConn := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Server1, labOurPort+4))
	s, err := NewServer(ServerConfig{Primary: srvConn, Rate: rate, Burst: burst, TotalRate: total})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() { _ = s.Close(); <-done })
	// the victim lives in the WAN node beside the server: let that node
	// accept packets whose source is one of its own addresses (a real
	// victim is elsewhere; Linux drops such "martians" by default)
	require.NoError(t, lab.Do(netlab.WAN, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/all/accept_local", []byte("1"), 0o644)
	}))
	victim := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Peer, 9999))
	vAddr := victim.LocalAddr().(*net.UDPAddr).AddrPort()
	server := s.Addrs()[0]

	bare := request(BindingOptions{NoFingerprint: true})
	require.Len(t, bare, 20)
	const n = 3000
	var start, end time.Time
	err = lab.Do(netlab.LAN, func() error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		start = time.Now()
		for i := range n {
			src := vAddr
			if i%2 == 1 { // others, spread over 200 addresses that do not exist
				src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i%200)}), uint16(20000+i))
			}
			if err := spoofUDP(fd, src, server, bare); err != nil {
				return err
			}
		}
		end = time.Now()
		return nil
	})
	require.NoError(t, err)

	// count what reaches the victim until the server has read what the
	// kernel did not drop (its counters stand still) and a read times out
	got, bytes := 0, 0
	buf := make([]byte, 1500)
	deadline := time.Now().Add(20 * time.Second)
	last := uint64(0)
	for time.Now().Before(deadline) {
		st := s.Stats()
		read := st.Responses + st.Errors + st.Malformed + st.Ignored + st.RateLimited
		require.NoError(t, victim.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
		k, err := victim.Read(buf)
		if err != nil {
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "%v", err)
			if read == last && read > 0 {
				break
			}
			last = read
			continue
		}
		got++
		bytes += k
		require.LessOrEqual(t, k, MaxAnswerSize)
	}
	st := s.Stats()
	elapsed := time.Since(start).Seconds()
	t.Logf("flood: %d spoofed requests (%d bytes) in %v; victim got %d answers (%d bytes); server answered %d, rate-limited %d, over %.2fs",
		n, n*len(bare), end.Sub(start), got, bytes, st.Responses, st.RateLimited, elapsed)
	require.Equal(t, st.Responses+st.RateLimited, st.Responses+st.RateLimited+st.Errors+st.Malformed+st.Ignored, "every request read was answered or rate-limited")
	require.LessOrEqual(t, st.Responses+st.RateLimited, uint64(n))
	require.Positive(t, got, "the victim's address did get its share")
	require.LessOrEqual(t, got, burst+int(rate*elapsed)+1, "per-source bound")
	require.LessOrEqual(t, int(st.Responses), total+int(total*elapsed)+1, "total bound")
	require.LessOrEqual(t, bytes, got*44, "2.2x at most for a bare IPv4 request")
}
