package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/outbound"
	"github.com/sipnat/sipnat/sipmsg"
)

// labEdge runs a natproxy on addr in the WAN (UDP and TCP) in front of the
// registrar; stop takes it down, listeners and connections.
func labEdge(t *testing.T, lab *netlab.Lab, addr netip.AddrPort) (stop func()) {
	conn := lab.ListenUDP(netlab.WAN, addr)
	ln := lab.ListenTCP(netlab.WAN, addr)
	p, err := NewProxy(Config{Conn: conn, TCP: ln, Self: addr, Upstream: netip.AddrPortFrom(netlab.Server1, 5060), FlowTimer: 3 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	done := false
	stop = func() {
		if done {
			return
		}
		done = true
		cancel()
		<-served
		ln.Close()
		conn.Close()
	}
	t.Cleanup(stop)
	return stop
}

// Two flows (two edges, reg-id 1 and 2, one instance) through a NAT: the
// UA is reachable through either; with one edge down, its flow backs off
// from the "another flow works" base while the other keeps the UA
// reachable.
func TestLabTwoEdges(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, TCPTimeout: 5 * time.Second})
	netlab.RequireTools(t, "kamailio", "kamcmd")
	rpc := startRegistrar(t, lab, netlab.Server2, "WITH_OUTBOUND")
	edges := []netip.AddrPort{netip.AddrPortFrom(netlab.Server2, 5060), netip.AddrPortFrom(netlab.Server2, 5070)}
	stopA := labEdge(t, lab, edges[0])
	labEdge(t, lab, edges[1])

	var g outbound.Group
	events := make(chan outbound.Event, 32)
	for i, e := range edges {
		regID := i + 1
		f, err := outbound.NewFlow(outbound.FlowConfig{
			Transport: sipmsg.TCP, Server: e, Group: &g,
			Dial: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				err = lab.Do(netlab.LAN, func() (err error) {
					d := net.Dialer{KeepAlive: -1}
					c, err = d.DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
			Register: func(ctx context.Context, f *outbound.Flow) ([]byte, error) {
				return f.Transact(ctx, sipmsg.AppendRegister(nil, sipmsg.RegisterRequest{
					Registrar: "sip:203.0.113.2", AoR: "sip:alice@203.0.113.2", User: "alice", Contact: f.Local(),
					Transport: f.Transport(), Branch: fmt.Sprintf("two%d-%d", regID, time.Now().UnixNano()), Tag: "a",
					CallID: fmt.Sprintf("two-%d", regID), CSeq: uint32(time.Now().Unix()), Expires: 300 * time.Second,
					Outbound: sipmsg.Outbound{Instance: "urn:uuid:4c1f5a2e-0d7b-4b8e-9d51-6a3c2f1e0b77", RegID: regID},
				}))
			},
			OnMessage: func(f *outbound.Flow, b []byte) {
				var m sipmsg.Message
				if m.Parse(b) == nil && m.IsRequest() {
					if resp, err := sipmsg.AppendResponse(nil, &m, 200, "OK", "alice", ""); err == nil {
						_ = f.Send(resp)
					}
				}
			},
			OnEvent:  func(e outbound.Event) { events <- e },
			Recovery: keepalive.Recovery{BaseAllFailed: time.Second, BaseSomeOK: 3 * time.Second, Max: 8 * time.Second},
		})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- f.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-ran })
	}
	registered := 0
	for registered < 2 {
		e := <-events
		if e.Kind == outbound.Registered {
			require.True(t, e.Outbound, "the registrar applied outbound")
			require.Equal(t, 3*time.Second, e.FlowTimer, "the edge's Flow-Timer")
			registered++
		}
	}
	require.Equal(t, 2, g.Up())
	dump := rpc("ul.dump")
	require.Contains(t, dump, "Reg-Id: 1")
	require.Contains(t, dump, "Reg-Id: 2")

	final := call(t, lab, "alice", "two-edges-up")
	require.Equal(t, 200, final.StatusCode(), "%s", final.Bytes())

	stopA()
	var retry outbound.Event
	for {
		e := <-events
		if e.Kind == outbound.Retrying {
			require.False(t, e.AllFailed, "the other flow works: %v", e)
			require.GreaterOrEqual(t, e.Wait, 3*time.Second, "base of the some-ok backoff")
			retry = e
			break
		}
	}
	require.Equal(t, 1, g.Up())
	start := time.Now()
	final = call(t, lab, "alice", "one-edge-down")
	require.Equal(t, 200, final.StatusCode(), "reachable through the other edge: %s", final.Bytes())
	t.Logf("with one edge down, the call was answered through the other in %v", time.Since(start).Round(10*time.Millisecond))

	// the edge comes back: the flow is formed again when its backoff ends
	labEdge(t, lab, edges[0])
	back := time.Now()
	for {
		e := <-events
		if e.Kind == outbound.Registered && e.Server == edges[0] {
			t.Logf("edge back after %v of a %v backoff: flow 1 registered again %v later",
				back.Sub(retry.At).Round(10*time.Millisecond), retry.Wait, e.At.Sub(back).Round(10*time.Millisecond))
			require.Less(t, e.At.Sub(retry.At), 8*time.Second+time.Second, "within the backoff ceiling")
			break
		}
	}
	require.Equal(t, 2, g.Up())
}
