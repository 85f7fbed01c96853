package outbound_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/outbound"
	"github.com/sipnat/sipnat/sipmsg"
)

// A UA keeps an RFC 5626 flow over TCP to an edge proxy; here the edge is
// an outbound.Edge on loopback that answers REGISTER itself.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	self := netip.MustParseAddrPort(ln.Addr().String())
	var edge *outbound.Edge
	edge, _ = outbound.NewEdge(outbound.EdgeConfig{Self: self, FlowTimer: 25 * time.Second,
		Handle: func(_ context.Context, from sipmsg.Flow, b []byte) {
			var m sipmsg.Message
			if m.Parse(b) == nil && m.IsMethod("REGISTER") {
				resp, _ := sipmsg.AppendResponse(nil, &m, 200, "OK", "edge", "Require: outbound\r\n")
				var r sipmsg.Message
				_ = r.Parse(resp)
				resp, _, _ = edge.AppendFlowTimerTo(nil, &r) // what an edge does to the registrar's answer
				_ = edge.Send(from, resp)
			}
		}})
	served := make(chan error, 1)
	go func() { served <- edge.ServeStream(ctx, ln, sipmsg.TCP) }()

	registered := make(chan outbound.Event, 1)
	f, _ := outbound.NewFlow(outbound.FlowConfig{
		Transport: sipmsg.TCP, Server: self,
		Register: func(ctx context.Context, f *outbound.Flow) ([]byte, error) {
			return f.Transact(ctx, sipmsg.AppendRegister(nil, sipmsg.RegisterRequest{
				Registrar: "sip:example.com", AoR: "sip:alice@example.com", User: "alice",
				Contact: f.Local(), Transport: f.Transport(), Branch: "reg1", Tag: "a", CallID: "c1", CSeq: 1,
				Expires:  time.Hour,
				Outbound: sipmsg.Outbound{Instance: "urn:uuid:4c1f5a2e-0d7b-4b8e-9d51-6a3c2f1e0b77", RegID: 1},
			}))
		},
		OnEvent: func(e outbound.Event) {
			if e.Kind == outbound.Registered {
				registered <- e
			}
		},
	})
	ran := make(chan error, 1)
	go func() { ran <- f.Run(ctx) }()
	e := <-registered
	fmt.Println("outbound:", e.Outbound, "Flow-Timer:", e.FlowTimer)
	cancel()
	<-ran
	<-served
	// Output: outbound: true Flow-Timer: 25s
}
