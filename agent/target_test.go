package agent

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestResolveTarget: an IP literal is taken as it is; a name is looked up
// (A and AAAA) at a DNS server on loopback; a name without records gives
// the name, no address and an error.
func TestResolveTarget(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr
	r := fakeDNS(t, map[string][]netip.Addr{
		"v4.example.net":   {a("198.51.100.2")},
		"dual.example.net": {a("198.51.100.2"), a("2001:db8:fe::2")},
	})
	for _, c := range []struct {
		uri  string
		want CallTarget
		err  string
	}{
		{"sip:bob@198.51.100.2:5080", CallTarget{Addrs: []netip.Addr{a("198.51.100.2")}}, ""},
		{"sips:bob@[2001:db8:fe::2]:5061;transport=tls", CallTarget{Addrs: []netip.Addr{a("2001:db8:fe::2")}}, ""},
		{"sip:[::ffff:198.51.100.2]", CallTarget{Addrs: []netip.Addr{a("198.51.100.2")}}, ""},
		{"sip:bob@v4.example.net", CallTarget{Name: "v4.example.net", Addrs: []netip.Addr{a("198.51.100.2")}}, ""},
		{"sip:bob@dual.example.net:5060;user=phone", CallTarget{Name: "dual.example.net", Addrs: []netip.Addr{a("198.51.100.2"), a("2001:db8:fe::2")}}, ""},
		{"sip:bob@none.example.net", CallTarget{Name: "none.example.net"}, "call target none.example.net: resolve"},
		{"bob at home", CallTarget{}, `call target "bob at home"`},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := ResolveTarget(ctx, r, c.uri)
		cancel()
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.uri)
		} else {
			require.NoError(t, err, c.uri)
		}
		require.ElementsMatch(t, c.want.Addrs, got.Addrs, c.uri)
		require.Equal(t, c.want.Name, got.Name, c.uri)
	}
}

// fakeDNS serves A and AAAA answers for names on a loopback UDP socket
// (NXDOMAIN for others) until the test ends, and returns a resolver that
// asks it.
func fakeDNS(t *testing.T, names map[string][]netip.Addr) *net.Resolver {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], names); resp != nil {
				_, _ = pc.WriteToUDPAddrPort(resp, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp4", pc.LocalAddr().String())
	}}
}

// dnsAnswer answers one DNS query q (one question, A or AAAA) from names.
func dnsAnswer(q []byte, names map[string][]netip.Addr) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		n := int(q[i])
		if i+1+n > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+n]))
		i += 1 + n
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	question := q[12 : i+5]
	addrs, known := names[strings.ToLower(strings.Join(labels, "."))]
	resp := append([]byte(nil), q[:12]...)
	resp[2] = 0x84 | q[2]&0x01 // QR, AA, RD copied
	resp[3] = 0x80             // RA
	if !known {
		resp[3] |= 3 // NXDOMAIN
	}
	var answers [][]byte
	for _, a := range addrs {
		if (qtype == 1) != a.Is4() || qtype != 1 && qtype != 28 {
			continue
		}
		rr := []byte{0xc0, 12} // the question's name
		rr = binary.BigEndian.AppendUint16(rr, qtype)
		rr = append(rr, 0, 1, 0, 0, 0, 60) // IN, TTL 60
		rr = binary.BigEndian.AppendUint16(rr, uint16(a.BitLen()/8))
		answers = append(answers, append(rr, a.AsSlice()...))
	}
	binary.BigEndian.PutUint16(resp[6:8], uint16(len(answers)))
	resp = append(resp[:8], 0, 0, 0, 0) // no authority, no additional
	resp = append(resp, question...)
	for _, rr := range answers {
		resp = append(resp, rr...)
	}
	return resp
}
