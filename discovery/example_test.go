package discovery_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/sipnat/sipnat/discovery"
)

// A Mapper maps the SIP port on a gateway. Here the gateway is a minimal
// PCP server on loopback that grants every MAP request for one hour.
func ExampleMapper() {
	gw, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer gw.Close()
	go servePCP(gw, netip.MustParseAddr("203.0.113.1"))

	m := discovery.NewMapper(discovery.MapperConfig{
		Gateway:   netip.MustParseAddr("127.0.0.1"),
		LocalAddr: netip.MustParseAddr("127.0.0.1"),
		PMPPort:   uint16(gw.LocalAddr().(*net.UDPAddr).Port),
		Protocols: []discovery.Protocol{discovery.ProtoPCP},
		OnEvent:   func(e discovery.Event) { fmt.Println("event:", e.Kind) },
	})
	mp, err := m.Map(context.Background(), "udp", 5060)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("public address:", mp.External, "via", mp.Protocol, "for", mp.Lifetime)

	// The UA is behind a carrier-grade NAT if STUN disagrees with the gateway.
	c := discovery.Reconcile(discovery.Observations{
		Local:   mp.Internal,
		Mapping: &mp,
		STUN:    netip.MustParseAddrPort("203.0.113.1:5060"),
	})
	fmt.Println("Contact:", c.Contact, "from", c.Source, "reachable:", c.Reachable)

	m.Close() // deletes the mapping
	// Output:
	// event: mapped
	// public address: 203.0.113.1:5060 via pcp for 1h0m0s
	// Contact: 203.0.113.1:5060 from mapping reachable: true
	// event: deleted
}

// DetectNAT64 finds the NAT64 prefix of an IPv6-only network. Here the
// gateway is the minimal PCP server on loopback, which names the
// Well-Known Prefix in a PREFIX64 option (RFC 7225); the DNS64 question
// (RFC 7050) is left out, so the example asks no DNS server.
func ExampleDetectNAT64() {
	gw, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer gw.Close()
	go servePCP(gw, netip.MustParseAddr("203.0.113.1"))

	n, err := discovery.DetectNAT64(context.Background(), discovery.NAT64Config{
		NoDNS: true,
		PCP: &discovery.MapperConfig{
			Gateway:   netip.MustParseAddr("127.0.0.1"),
			LocalAddr: netip.MustParseAddr("127.0.0.1"),
			PMPPort:   uint16(gw.LocalAddr().(*net.UDPAddr).Port),
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("NAT64 prefix:", n.Prefixes[0], "from", n.From)
	// Output:
	// NAT64 prefix: 64:ff9b::/96 from pcp
}

// servePCP answers PCP ANNOUNCE and MAP requests (RFC 6887) from conn; an
// ANNOUNCE gets the Well-Known NAT64 prefix in a PREFIX64 option (RFC 7225).
func servePCP(conn net.PacketConn, external netip.Addr) {
	buf := make([]byte, 1100)
	for {
		n, src, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req := buf[:n]
		if n < 24 || req[0] != 2 {
			continue
		}
		resp := make([]byte, 24, 60)
		resp[0], resp[1] = 2, 0x80|req[1]
		if req[1] == 1 && n >= 60 {
			life := min(binary.BigEndian.Uint32(req[4:8]), 3600)
			binary.BigEndian.PutUint32(resp[4:], life)
			resp = append(resp, req[24:44]...) // nonce, protocol, internal port
			ext := external.As16()
			resp = append(resp, ext[:]...)
			copy(resp[42:44], req[40:42]) // external port = internal port
		}
		if req[1] == 0 { // PREFIX64: code 129, length 14: Prefix64-Length 12, the /96, no suffix; 2 octets of padding
			resp = append(resp, 129, 0, 0, 14, 0, 12, 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
		}
		conn.WriteTo(resp, src)
	}
}
