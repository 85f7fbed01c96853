package netlab

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// inbound6 sends from src on the WAN to the client's IPv6 public address and
// port, and reports whether a LAN socket on that port received it.
func inbound6(t *testing.T, lab *Lab, src netip.AddrPort, port uint16, label string) bool {
	t.Helper()
	rx := lab.ListenUDP(LAN, netip.AddrPortFrom(netip.IPv6Unspecified(), port))
	defer rx.Close()
	return sendWAN(t, lab, src, netip.AddrPortFrom(lab.Truth().Public6, port), rx, label)
}

// sendWAN sends label from src (a fresh WAN socket) to to, up to three
// times, and reports whether rx received it.
func sendWAN(t *testing.T, lab *Lab, src, to netip.AddrPort, rx *net.UDPConn, label string) bool {
	t.Helper()
	tx := lab.ListenUDP(WAN, src)
	defer tx.Close()
	for i := 0; i < 3; i++ {
		_, err := tx.WriteToUDPAddrPort([]byte(label), to)
		require.NoError(t, err)
		if _, ok := receive(rx, label, 400*time.Millisecond); ok {
			return true
		}
	}
	return false
}

// TestIPv6Firewall: the dual-stack router is an RFC 6092 stateful firewall.
// A reply to an outbound flow comes in, with the client's own address as
// its source (no translation); an unsolicited packet, from another host or
// from the same host's other port, is dropped; the flow's state expires
// after the 3 s UDP timeout; IPv4 still goes through the IPv4 NAT.
func TestIPv6Firewall(t *testing.T) {
	t.Parallel()
	lab := New(t, Config{Kind: EIMAPDF, IPv6: IPv6Firewall, Timeout: 3 * time.Second})
	tr := lab.Truth()
	require.Equal(t, Client6, tr.Public6)
	require.Equal(t, NoNAT, tr.Mapping6)
	require.Equal(t, AddressAndPortDependent, tr.Filtering6)
	refl := netip.AddrPortFrom(Server1V6, 7000)
	reflector(t, lab, refl)
	c := lab.ListenUDP(LAN, netip.AddrPortFrom(Client6, 43000))
	require.Equal(t, netip.AddrPortFrom(Client6, 43000), mappedVia(t, c, refl), "no translation")

	require.False(t, inbound6(t, lab, netip.AddrPortFrom(Peer6, 7000), 43100, "unsolicited"), "unsolicited from a peer")
	// the same 5-tuple from the server's side is a reply; another port of it is not
	late := lab.ListenUDP(WAN, netip.AddrPortFrom(Server1V6, 7001))
	_, err := late.WriteToUDPAddrPort([]byte("other port"), netip.AddrPortFrom(Client6, 43000))
	require.NoError(t, err)
	_, ok := receive(c, "other port", 500*time.Millisecond)
	require.False(t, ok, "address-and-port-dependent filtering")

	// A flow whose state is alive lets the server's later packet in; one idle
	// past the timeout does not.
	srv := lab.ListenUDP(WAN, netip.AddrPortFrom(Server2V6, 7002))
	require.True(t, replyAfter(t, c, srv, 1500*time.Millisecond), "reply within the timeout")
	require.False(t, replyAfter(t, c, srv, 4*time.Second), "state expired after 3 s idle")

	c4 := lab.ListenUDP(LAN, netip.AddrPortFrom(Client, 43200))
	reflector(t, lab, netip.AddrPortFrom(Server1, 7000))
	require.Equal(t, Public, mappedVia(t, c4, netip.AddrPortFrom(Server1, 7000)).Addr(), "IPv4 is NATed beside")
}

// replyAfter sends from c to the server socket srv, which answers from
// the same address and port after idle; it reports whether c received the
// answer.
func replyAfter(t *testing.T, c, srv *net.UDPConn, idle time.Duration) bool {
	t.Helper()
	to := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 100)
	var from netip.AddrPort
	for try := 0; ; try++ {
		require.Less(t, try, 5, "the server got nothing")
		_, err := c.WriteToUDPAddrPort([]byte("hello"), to)
		require.NoError(t, err)
		require.NoError(t, srv.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
		if _, from, err = srv.ReadFromUDPAddrPort(buf); err == nil {
			break
		}
	}
	if idle > 0 {
		time.Sleep(idle) // the firewall's state must expire: there is nothing to poll
	}
	_, err := srv.WriteToUDPAddrPort([]byte("late"), from)
	require.NoError(t, err)
	_, ok := receive(c, "late", 500*time.Millisecond)
	return ok
}

// TestIPv6Translation: NPTv6 keeps the interface identifier and port and
// swaps the prefix; NAT66 puts the router's WAN address on. Both keep the
// firewall: unsolicited inbound is dropped.
func TestIPv6Translation(t *testing.T) {
	t.Parallel()
	for _, mode := range []IPv6Mode{IPv6NPT, IPv6NAT66} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			lab := New(t, Config{Kind: EIMAPDF, IPv6: mode})
			refl := netip.AddrPortFrom(Server1V6, 7000)
			reflector(t, lab, refl)
			c := lab.ListenUDP(LAN, netip.AddrPortFrom(Client6, 43000))
			got := mappedVia(t, c, refl)
			require.Equal(t, lab.Truth().Public6, got.Addr())
			if mode == IPv6NPT {
				require.Equal(t, NPTClient, got.Addr())
				require.EqualValues(t, 43000, got.Port(), "NPTv6 keeps the port")
			} else {
				require.Equal(t, RouterWAN6, got.Addr())
			}
			require.False(t, inbound6(t, lab, netip.AddrPortFrom(Peer6, 7000), 43100, "unsolicited"), "unsolicited from a peer")
		})
	}
}

// TestNAT64: the LAN has no IPv4; unbound's DNS64 synthesises
// ipv4only.arpa (RFC 7050) and the lab's IPv4 names into the NAT64 prefix;
// a packet to a synthesised address reaches the IPv4 server through tayga
// and the IPv4 NAT (source Public) and the reply comes back from the
// synthesised address.
func TestNAT64(t *testing.T) {
	t.Parallel()
	lab := New(t, Config{Kind: EIMAPDF, IPv6: IPv6NAT64})
	require.Equal(t, NAT64Prefix, lab.Truth().NAT64Prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := lab.Resolver(LAN)
	ips, err := r.LookupNetIP(ctx, "ip6", "ipv4only.arpa")
	require.NoError(t, err)
	var got []string
	for _, a := range ips {
		got = append(got, a.String())
	}
	sort.Strings(got)
	require.Equal(t, []string{"2001:db8:64::c000:aa", "2001:db8:64::c000:ab"}, got, "DNS64 synthesis (RFC 6052 /96)")
	ips, err = r.LookupNetIP(ctx, "ip6", "sip.lab.example")
	require.NoError(t, err)
	srv := synth96(Server1)
	require.Equal(t, []netip.Addr{srv}, ips)

	err = lab.Do(LAN, func() error {
		c, err := net.Dial("udp4", netip.AddrPortFrom(Server1, 7000).String())
		if err == nil {
			_, err = c.Write([]byte("v4"))
			c.Close()
		}
		return err
	})
	require.Error(t, err, "the LAN has no IPv4 route")

	reflector(t, lab, netip.AddrPortFrom(Server1, 7000))
	c := lab.ListenUDP(LAN, netip.AddrPortFrom(Client6, 43000))
	got2 := mappedVia(t, c, netip.AddrPortFrom(srv, 7000))
	require.Equal(t, Public, got2.Addr(), "the IPv4 server sees the NAT's public address")
	out, err := lab.Command(RTR, "conntrack", "-L", "-p", "udp").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.True(t, strings.Contains(string(out), "src="+Client6.String()), "an IPv6 flow towards tayga:\n%s", out)
}

// synth96 embeds a in NAT64Prefix (RFC 6052 section 2.2, /96).
func synth96(a netip.Addr) netip.Addr {
	b := NAT64Prefix.Addr().As16()
	v4 := a.As4()
	copy(b[12:], v4[:])
	return netip.AddrFrom16(b)
}

// TestIPv6Pinholes: miniupnpd's IGDv2 WANIPv6FirewallControl (upnpc -6
// AddPinhole/DeletePinhole) and PCP MAP over IPv6 open the firewall for an
// inbound UDP port of the client and close it again.
func TestIPv6Pinholes(t *testing.T) {
	t.Parallel()
	RequireTools(t, "upnpc")
	lab := New(t, Config{Kind: EIMAPDF, IPv6: IPv6Firewall, UPnP: true})
	peer := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(Peer6, port) }
	// upnpc -6 finds no IGD by SSDP over IPv6 here; the description URL on
	// the router's IPv6 address makes the SOAP calls come from Client6,
	// which miniupnpd requires of a pinhole's internal client.
	igd6 := "http://[" + RouterLAN6.String() + "]:2869/rootDesc.xml"

	t.Run("IGDv2 pinhole", func(t *testing.T) {
		require.False(t, inbound6(t, lab, peer(45999), 45000, "before"), "delivered before the pinhole")
		out := runTool(t, lab, LAN, "upnpc", "-6", "-u", igd6, "-A", "", "0", Client6.String(), "45000", "17", "120")
		m := regexp.MustCompile(`Pinhole ID = (\d+)`).FindStringSubmatch(out)
		require.NotNil(t, m, "AddPinhole answer:\n%s", out)
		id := m[1]
		require.True(t, inbound6(t, lab, peer(45998), 45000, "pinhole"), "dropped with the pinhole")
		runTool(t, lab, LAN, "upnpc", "-6", "-u", igd6, "-D", id)
		require.False(t, inbound6(t, lab, peer(45997), 45000, "deleted"), "delivered after DeletePinhole")
	})
	t.Run("PCP MAP", func(t *testing.T) {
		require.False(t, inbound6(t, lab, peer(48999), 48000, "before"))
		var nonce [12]byte
		_, _ = rand.Read(nonce[:])
		ext, lifetime := pcpMapFrom(t, lab, Client6, RouterLAN6, nonce, 48000, 120)
		require.Equal(t, netip.AddrPortFrom(Client6, 48000), ext, "a firewall maps to the same address and port")
		require.EqualValues(t, 120, lifetime)
		require.True(t, inbound6(t, lab, peer(48998), 48000, "mapped"))
		pcpMapFrom(t, lab, Client6, RouterLAN6, nonce, 48000, 0)
		require.False(t, inbound6(t, lab, peer(48997), 48000, "deleted"))
	})
}
