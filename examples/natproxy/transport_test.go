package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/outbound"
	"github.com/sipnat/sipnat/sipmsg"
)

// fakeRegistrar is an upstream on UDP: it answers REGISTER with 200 and
// Require: outbound, and remembers the Path the proxy added.
type fakeRegistrar struct {
	conn  *net.UDPConn
	paths chan string
	resps chan sipmsg.Message
}

func newFakeRegistrar(t *testing.T) *fakeRegistrar {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	require.NoError(t, err)
	r := &fakeRegistrar{conn: c, paths: make(chan string, 4), resps: make(chan sipmsg.Message, 4)}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var m sipmsg.Message
			if m.Parse(append([]byte(nil), buf[:n]...)) != nil {
				continue
			}
			if !m.IsRequest() {
				r.resps <- m
				continue
			}
			if !m.IsMethod("REGISTER") {
				continue
			}
			path, _ := m.Get(sipmsg.HdrPath)
			r.paths <- string(path)
			resp, err := sipmsg.AppendResponse(nil, &m, 200, "OK", "reg", "Require: outbound\r\n")
			if err == nil {
				_, _ = c.WriteToUDPAddrPort(resp, from)
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return r
}

func (r *fakeRegistrar) addr() netip.AddrPort {
	return netip.MustParseAddrPort(r.conn.LocalAddr().String())
}

// invite sends an INVITE for the UA along path, as a registrar does
// (RFC 3327: the Path becomes the Route), to the proxy.
func (r *fakeRegistrar) invite(t *testing.T, proxy netip.AddrPort, path, callID string) {
	req := fmt.Sprintf("INVITE sip:alice@198.51.100.7:5070 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\nRoute: %s\r\n"+
		"From: <sip:bob@example.com>;tag=b\r\nTo: <sip:alice@example.com>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
		r.addr(), callID, path, callID)
	_, err := r.conn.WriteToUDPAddrPort([]byte(req), proxy)
	require.NoError(t, err)
}

// The proxy as an RFC 5626 edge on UDP, TCP and TLS: a UA's REGISTER gets
// a flow token with ;ob in Path and the proxy's Flow-Timer in its 2xx; a
// request from the registrar along that Path reaches the UA over its own
// flow; once the UA's TCP or TLS connection is gone, the registrar gets 430.
func TestProxyStreams(t *testing.T) {
	t.Parallel()
	certs, err := netlab.MakeCerts(t.TempDir(), "", "proxy.example", netip.MustParseAddr("127.0.0.1"))
	require.NoError(t, err)
	for _, tr := range []sipmsg.Transport{sipmsg.UDP, sipmsg.TCP, sipmsg.TLS} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			reg := newFakeRegistrar(t)
			udp, err := net.ListenPacket("udp", "127.0.0.1:0")
			require.NoError(t, err)
			defer udp.Close()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			self := netip.MustParseAddrPort(udp.LocalAddr().String())
			cfg := Config{Conn: udp, Self: self, Upstream: reg.addr(), FlowTimer: 20 * time.Second,
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{certs.Server}}}
			server := netip.MustParseAddrPort(ln.Addr().String())
			switch tr {
			case sipmsg.TLS:
				cfg.TLS = ln
			case sipmsg.TCP:
				cfg.TCP = ln
			case sipmsg.UDP:
				server = self // STUN keep-alives to the proxy's own SIP port
			}
			p, err := NewProxy(cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- p.Serve(ctx) }()
			defer func() { cancel(); require.NoError(t, <-served) }()

			registered := make(chan outbound.Event, 4)
			invites := make(chan string, 4)
			f, err := outbound.NewFlow(outbound.FlowConfig{
				Transport: tr, Server: server, ServerName: "proxy.example", RootCAs: certs.Roots,
				Register: func(ctx context.Context, f *outbound.Flow) ([]byte, error) {
					return f.Transact(ctx, sipmsg.AppendRegister(nil, sipmsg.RegisterRequest{
						Registrar: "sip:example.com", AoR: "sip:alice@example.com", User: "alice", Contact: f.Local(),
						Transport: f.Transport(), Branch: "r1", Tag: "a", CallID: "reg", CSeq: 1, Expires: time.Hour,
						Outbound: sipmsg.Outbound{Instance: "urn:uuid:4c1f5a2e-0d7b-4b8e-9d51-6a3c2f1e0b77", RegID: 1},
					}))
				},
				OnEvent: func(e outbound.Event) {
					if e.Kind == outbound.Registered {
						registered <- e
					}
				},
				OnMessage: func(f *outbound.Flow, b []byte) {
					var m sipmsg.Message
					if m.Parse(b) == nil && m.IsMethod("INVITE") {
						cid, _ := m.Get(sipmsg.HdrCallID)
						invites <- string(cid)
					}
				},
			})
			require.NoError(t, err)
			uaCtx, uaStop := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() { ran <- f.Run(uaCtx) }()

			e := <-registered
			require.True(t, e.Outbound)
			require.Equal(t, 20*time.Second, e.FlowTimer, "the proxy's Flow-Timer")
			path := <-reg.paths
			require.Regexp(t, `^<sip:[A-Za-z0-9_-]+@`+self.String()+`;lr;ob>$`, path)

			reg.invite(t, self, path, "call-1")
			require.Equal(t, "call-1", <-invites, "over the UA's own connection")

			uaStop()
			<-ran
			if tr == sipmsg.UDP {
				return // no connection to lose: the proxy keeps sending to the address
			}
			require.Eventually(t, func() bool { return p.edge.Flows() == 0 }, 5*time.Second, 10*time.Millisecond)
			reg.invite(t, self, path, "call-2")
			resp := <-reg.resps
			require.Equal(t, 430, resp.StatusCode())
		})
	}
}
