package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/sipmsg"
)

// answer200 builds bob's 200 OK to an INVITE: Via, From, Call-ID, CSeq and
// Record-Route copied (RFC 3261 §12.1.1), To tagged, bob's Contact.
func answer200(m *sipmsg.Message, contact string) []byte {
	b := []byte("SIP/2.0 200 OK\r\n")
	for i := 0; i < m.NumHeaders(); i++ {
		switch m.HeaderKind(i) {
		case sipmsg.HdrVia, sipmsg.HdrFrom, sipmsg.HdrCallID, sipmsg.HdrCSeq, sipmsg.HdrRecordRoute:
			b = append(b, m.HeaderLineSpan(i).In(m.Bytes())...)
		case sipmsg.HdrTo:
			b = append(append(append(b, "To: "...), m.HeaderValue(i)...), ";tag=bob1\r\n"...)
		}
	}
	return append(b, "Contact: <"+contact+">\r\nContent-Length: 0\r\n\r\n"...)
}

// TestLabNATProxyCall: sipp behind the NAT calls bob (a socket on the
// internet registered at the plain registrar) through natproxy. Bob sees
// the Contact aliased, the SDP rewritten to the public address and the
// proxy in the Record-Route; his 200 OK reaches sipp through registrar,
// proxy and NAT, and sipp's ACK comes back along the recorded route.
func TestLabNATProxyCall(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF})
	netlab.RequireTools(t, "kamailio", "kamcmd", "sipp")
	startRegistrar(t, lab, netlab.Server2)
	self := netip.AddrPortFrom(netlab.Server2, 5060)
	registrar := netip.AddrPortFrom(netlab.Server1, 5060)
	p, err := NewProxy(Config{Conn: lab.ListenUDP(netlab.WAN, self), Self: self, Upstream: registrar})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })

	// bob registers directly: he is on the internet
	bob := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Peer, 5099))
	bobURI := "sip:bob@198.51.100.2:5099"
	reg := "REGISTER sip:203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.2:5099;branch=z9hG4bKbobreg;rport\r\n" +
		"From: <sip:bob@203.0.113.2>;tag=b1\r\nTo: <sip:bob@203.0.113.2>\r\nCall-ID: bobreg\r\nCSeq: 1 REGISTER\r\n" +
		"Contact: <" + bobURI + ">\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
	buf := make([]byte, 65535)
	var m sipmsg.Message
	registered := false
	for try := 0; try < 10 && !registered; try++ {
		_, err := bob.WriteToUDPAddrPort([]byte(reg), registrar)
		require.NoError(t, err)
		_ = bob.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, _, err := bob.ReadFromUDPAddrPort(buf); err == nil && m.Parse(buf[:n]) == nil && m.StatusCode() == 200 {
			registered = true
		}
	}
	require.True(t, registered, "bob could not register")

	wd, err := os.Getwd()
	require.NoError(t, err)
	sipp := lab.Start(netlab.LAN, "sipp", self.String(), "-sf", filepath.Join(wd, "testdata", "invite.xml"),
		"-m", "1", "-i", netlab.Client.String(), "-p", "5072", "-nostdin", "-timeout", "15s", "-timeout_error")

	// bob answers the INVITE and waits for the ACK
	deadline := time.Now().Add(10 * time.Second)
	var invite, ack []byte
	for ack == nil && time.Now().Before(deadline) {
		_ = bob.SetReadDeadline(deadline)
		n, from, err := bob.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		if m.Parse(buf[:n]) != nil {
			continue
		}
		switch {
		case m.IsMethod("INVITE"):
			invite = append(invite[:0], buf[:n]...)
			_, err := bob.WriteToUDPAddrPort(answer200(&m, bobURI), from)
			require.NoError(t, err)
		case m.IsMethod("ACK"):
			ack = append([]byte(nil), buf[:n]...)
		}
	}
	require.NotNil(t, invite, "the INVITE did not reach bob")
	s := string(invite)
	require.Contains(t, s, "Record-Route: <sip:203.0.113.3:5060;lr;nat=yes>", s, "the caller is behind NAT: the dialog is marked")
	require.Contains(t, s, "<sip:alice@192.168.1.10:5072;alias=203.0.113.1~5072~1>", s)
	require.Contains(t, s, "c=IN IP4 203.0.113.1\r\n", s)
	require.Contains(t, s, "o=alice 1 1 IN IP4 203.0.113.1\r\n", s)
	require.NoError(t, m.Parse(invite), "bob's INVITE scans")
	require.NotNil(t, ack, "no ACK reached bob along the route set:\n%s", s)
	require.True(t, strings.HasPrefix(string(ack), "ACK "+bobURI+" SIP/2.0\r\n"), "%s", ack)
	select {
	case <-sipp.Done():
		require.NoError(t, sipp.Wait(), sipp.Output())
	case <-time.After(10 * time.Second):
		t.Fatal("sipp did not finish")
	}
}
