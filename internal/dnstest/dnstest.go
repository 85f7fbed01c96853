// Package dnstest serves DNS answers on loopback for tests: the A and
// AAAA records of the names a test gives, NXDOMAIN for the others, and a
// net.Resolver that asks that server only (no other DNS is touched).
package dnstest

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// Resolver serves A and AAAA answers for names on a loopback UDP socket
// (NXDOMAIN for other names; nil names: NXDOMAIN for all) until the test
// ends, and returns a resolver that asks it and nothing else.
func Resolver(t testing.TB, names map[string][]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if resp := answer(buf[:n], names); resp != nil {
				_, _ = pc.WriteToUDPAddrPort(resp, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp4", pc.LocalAddr().String())
	}}
}

// answer answers one DNS query q (one question, A or AAAA) from names.
func answer(q []byte, names map[string][]netip.Addr) []byte {
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
