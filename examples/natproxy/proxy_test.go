package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sipmsg"
)

// The addresses of the socketless tests: the proxy, upstream, a UA's NAT.
var (
	self = netip.MustParseAddrPort("203.0.113.3:5060")
	up   = netip.MustParseAddrPort("203.0.113.2:5060")
	ua   = netip.MustParseAddrPort("203.0.113.1:40000")
)

// testProxy is a proxy at self in front of up, with cfg's other settings,
// on a loopback socket it never uses (Handle is called directly).
func testProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	cfg.Conn, cfg.Self, cfg.Upstream = c, self, up
	p, err := NewProxy(cfg)
	require.NoError(t, err)
	return p
}

// TestHandle walks one REGISTER, its 200 OK, an OPTIONS from upstream and
// the UA's answer through the proxy without sockets.
func TestHandle(t *testing.T) {
	t.Parallel()
	p := testProxy(t, Config{})
	var m sipmsg.Message

	reg := "REGISTER sip:203.0.113.3 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\nFrom: <sip:alice@203.0.113.3>;tag=1\r\nTo: <sip:alice@203.0.113.3>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.168.1.10:5070>\r\nContent-Length: 0\r\n\r\n"
	out, dst, err := p.Handle(context.Background(), nil, &m, []byte(reg), ua)
	require.NoError(t, err)
	require.Equal(t, up, dst)
	s := string(out)
	require.Contains(t, s, "\r\nVia: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp")
	require.Contains(t, s, "Via: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport=40000;received=203.0.113.1\r\n")
	require.Regexp(t, `Path: <sip:[A-Za-z0-9_-]+@203\.0\.113\.3:5060;lr>\r\n`, s, "a flow token in Path")
	require.Contains(t, s, "Contact: <sip:alice@192.168.1.10:5070;alias=203.0.113.1~40000~1>\r\n")

	// the registrar's 200 OK goes back to the UA's public address
	var fwd sipmsg.Message
	require.NoError(t, fwd.Parse(out))
	resp := []byte("SIP/2.0 200 OK\r\n")
	it := fwd.Values(sipmsg.HdrVia)
	for it.Next() {
		resp = append(append(append(resp, "Via: "...), it.Bytes()...), "\r\n"...)
	}
	resp = append(resp, "From: <sip:alice@203.0.113.3>;tag=1\r\nTo: <sip:alice@203.0.113.3>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"...)
	out, dst, err = p.Handle(context.Background(), nil, &m, resp, up)
	require.NoError(t, err)
	require.Equal(t, ua, dst)
	require.Equal(t, 1, strings.Count(string(out), "Via:"))

	// the registrar relays an OPTIONS along the Path
	opt := "OPTIONS sip:alice@192.168.1.10:5070;alias=203.0.113.1~40000~1 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bKk1\r\nRoute: <sip:203.0.113.3:5060;lr>\r\nFrom: <sip:r@203.0.113.2>;tag=9\r\nTo: <sip:alice@203.0.113.3>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	out, dst, err = p.Handle(context.Background(), nil, &m, []byte(opt), up)
	require.NoError(t, err)
	require.Equal(t, ua, dst)
	s = string(out)
	require.True(t, strings.HasPrefix(s, "OPTIONS sip:alice@192.168.1.10:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp"), s)
	require.NotContains(t, s, "Route:")

	// keep-alives and garbage are dropped
	_, dst, err = p.Handle(context.Background(), nil, &m, []byte("\r\n\r\n"), ua)
	require.NoError(t, err)
	require.False(t, dst.IsValid())
	_, _, err = p.Handle(context.Background(), nil, &m, []byte("junk"), ua)
	require.Error(t, err)
}

// TestPings: a NATed REGISTER puts its source on the ping list, and CRLF
// pings (nathelper's natping) arrive there from the proxy's socket.
func TestPings(t *testing.T) {
	t.Parallel()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	ua, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer ua.Close()
	self := c.LocalAddr().(*net.UDPAddr).AddrPort()
	p, err := NewProxy(Config{Conn: c, Self: self, Upstream: netip.MustParseAddrPort("127.0.0.1:9"), Ping: 200 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }() // the pings go out from the socket Serve reads
	defer func() { cancel(); require.NoError(t, <-served) }()
	require.Eventually(t, func() bool { return p.edge.Has(sipmsg.Flow{Local: self, Transport: sipmsg.UDP}) }, 5*time.Second, time.Millisecond)
	src := ua.LocalAddr().(*net.UDPAddr).AddrPort()
	reg := "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\nFrom: <sip:alice@x>;tag=1\r\nTo: <sip:alice@x>\r\nCall-ID: r\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.168.1.10:5070>\r\nContent-Length: 0\r\n\r\n"
	var m sipmsg.Message
	_, _, err = p.Handle(context.Background(), nil, &m, []byte(reg), src)
	require.NoError(t, err)
	require.NoError(t, ua.SetReadDeadline(time.Now().Add(3*time.Second)))
	buf := make([]byte, 64)
	n, from, err := ua.ReadFromUDPAddrPort(buf)
	require.NoError(t, err, "no ping")
	require.Equal(t, "\r\n\r\n", string(buf[:n]))
	require.Equal(t, self, from)
}
