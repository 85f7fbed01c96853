package netlab

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPortMapping: miniupnpd's UPnP IGD, NAT-PMP and PCP, driven by upnpc,
// natpmpc and a hand-made PCP MAP request, open the public port (packets
// from two WAN peers delivered) and close it again on delete.
func TestPortMapping(t *testing.T) {
	t.Parallel()
	RequireTools(t, "upnpc", "natpmpc")
	t.Run("eim-apdf", func(t *testing.T) {
		t.Parallel()
		lab := New(t, Config{Kind: EIMAPDF, UPnP: true})
		wan := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(Server1, port) }
		peer := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(Peer, port) }
		lanCmd := func(t *testing.T, name string, args ...string) string { return runTool(t, lab, LAN, name, args...) }

		t.Run("UPnP IGD", func(t *testing.T) {
			out := lanCmd(t, "upnpc", "-i", "-s")
			require.Equal(t, "203.0.113.1", field(out, "ExternalIPAddress ="))
			require.False(t, inbound(t, lab, wan(45999), 45000, "before"), "delivered before the mapping")
			out = lanCmd(t, "upnpc", "-i", "-a", Client.String(), "45000", "45000", "UDP")
			require.Regexp(t, `external 203\.0\.113\.1:45000 UDP is redirected to internal 192\.168\.1\.10:45000`, out)
			require.True(t, inbound(t, lab, wan(45998), 45000, "mapped"), "dropped after the mapping")
			require.True(t, inbound(t, lab, peer(45997), 45000, "mapped2"), "dropped from another peer")
			lanCmd(t, "upnpc", "-i", "-d", "45000", "UDP")
			require.False(t, inbound(t, lab, wan(45996), 45000, "deleted"), "delivered after delete")
		})
		t.Run("NAT-PMP", func(t *testing.T) {
			out := lanCmd(t, "natpmpc", "-g", RouterLAN.String())
			require.Equal(t, "203.0.113.1", field(out, "Public IP address :"))
			require.False(t, inbound(t, lab, wan(46999), 46000, "before"))
			out = lanCmd(t, "natpmpc", "-g", RouterLAN.String(), "-a", "46000", "46000", "udp", "120")
			require.Regexp(t, `Mapped public port 46000 protocol UDP to local port 46000`, out)
			require.True(t, inbound(t, lab, wan(46998), 46000, "mapped"))
			lanCmd(t, "natpmpc", "-g", RouterLAN.String(), "-a", "0", "46000", "udp", "0")
			require.False(t, inbound(t, lab, wan(46997), 46000, "deleted"))
		})
		t.Run("PCP", func(t *testing.T) {
			require.False(t, inbound(t, lab, wan(47999), 47000, "before"))
			var nonce [12]byte
			_, _ = rand.Read(nonce[:])
			ext, lifetime := pcpMap(t, lab, nonce, 47000, 120)
			require.Equal(t, netip.AddrPortFrom(Public, 47000), ext)
			require.EqualValues(t, 120, lifetime)
			require.True(t, inbound(t, lab, wan(47998), 47000, "mapped"))
			pcpMap(t, lab, nonce, 47000, 0) // a delete must repeat the mapping's nonce
			require.False(t, inbound(t, lab, wan(47997), 47000, "deleted"))
		})
	})
	t.Run("apdm", func(t *testing.T) {
		t.Parallel()
		lab := New(t, Config{Kind: APDM, UPnP: true})
		out, err := lab.Command(LAN, "natpmpc", "-g", RouterLAN.String(), "-a", "46100", "46100", "udp", "120").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.True(t, inbound(t, lab, netip.AddrPortFrom(Peer, 46199), 46100, "symmetric"))
	})
	t.Run("restart", func(t *testing.T) {
		t.Parallel()
		lab := New(t, Config{Kind: EIMAPDF, UPnP: true})
		epochRe := regexp.MustCompile(`epoch = (\d+)`)
		epoch := func(args ...string) int {
			out, err := lab.Command(LAN, "natpmpc", append([]string{"-g", RouterLAN.String()}, args...)...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			m := epochRe.FindStringSubmatch(string(out))
			require.NotNil(t, m, "%s", out)
			e, err := strconv.Atoi(m[1])
			require.NoError(t, err)
			return e
		}
		epoch("-a", "46200", "46200", "udp", "120")
		require.True(t, inbound(t, lab, netip.AddrPortFrom(Server1, 46299), 46200, "mapped"))
		// The epoch counts seconds since miniupnpd started; let it grow past
		// what a freshly restarted daemon can show, so the drop is certain.
		var before int
		require.NoError(t, waitFor(15*time.Second, func() (bool, error) { before = epoch(); return before >= 6, nil }))
		lab.RestartMiniupnpd()
		require.False(t, inbound(t, lab, netip.AddrPortFrom(Server1, 46298), 46200, "gone"), "mapping survived a restart")
		after := epoch()
		require.Less(t, after, before, "the epoch starts over after a restart (RFC 6886 section 3.6)")
	})
}

// pcpMap sends one RFC 6887 MAP request for UDP port from the client and
// returns the assigned external address and lifetime. Lifetime 0 deletes.
func pcpMap(t *testing.T, lab *Lab, nonce [12]byte, port uint16, lifetime uint32) (netip.AddrPort, uint32) {
	return pcpMapFrom(t, lab, Client, RouterLAN, nonce, port, lifetime)
}

// pcpMapFrom sends the MAP request from client (IPv4, sent IPv4-mapped, or
// IPv6) to the PCP server on gateway; the suggested external address is the
// unspecified one of the client's family.
func pcpMapFrom(t *testing.T, lab *Lab, client, gateway netip.Addr, nonce [12]byte, port uint16, lifetime uint32) (netip.AddrPort, uint32) {
	t.Helper()
	c := lab.ListenUDP(LAN, netip.AddrPortFrom(client, 0))
	defer c.Close()
	req := make([]byte, 60)
	req[0], req[1] = 2, 1 // version 2, MAP request
	binary.BigEndian.PutUint32(req[4:], lifetime)
	own := client.As16() // IPv4-mapped for IPv4
	copy(req[8:24], own[:])
	copy(req[24:36], nonce[:])
	req[36] = 17 // UDP
	binary.BigEndian.PutUint16(req[40:], port)
	binary.BigEndian.PutUint16(req[42:], port)
	if client.Is4() {
		any4 := netip.IPv4Unspecified().As16()
		copy(req[44:60], any4[:])
	}
	server := netip.AddrPortFrom(gateway, PMPPort)
	buf := make([]byte, 1100)
	for try := 0; try < 4; try++ {
		_, err := c.WriteToUDPAddrPort(req, server)
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if isTimeout(err) {
			continue
		}
		require.NoError(t, err)
		require.GreaterOrEqual(t, n, 60)
		r := buf[:n]
		require.Equal(t, byte(2), r[0])
		require.Equal(t, byte(0x81), r[1], "MAP response")
		require.Equal(t, byte(0), r[3], "PCP result code")
		require.Equal(t, nonce[:], r[24:36], "nonce echoed")
		ip := netip.AddrFrom16([16]byte(r[44:60])).Unmap()
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(r[42:])), binary.BigEndian.Uint32(r[4:])
	}
	t.Fatalf("no PCP response from %s", server)
	return netip.AddrPort{}, 0
}
