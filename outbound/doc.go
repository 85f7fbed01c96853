// Package outbound keeps SIP flows from a user agent behind NAT to its
// edge proxy over UDP, TCP and TLS, and is the transport half of that
// edge proxy (RFC 5626, SIP Outbound).
//
// A NAT forgets an idle UDP binding in tens of seconds and an idle TCP
// connection in minutes to hours (RFC 5382 asks for at least 2 h 4 min;
// home routers often keep less). After that the edge can no longer reach
// the UA. RFC 5626 keeps the UA's own connection (a "flow") open with
// keep-alives, notices when it breaks and forms it again:
//
//   - Flow, for a UA: one connection per edge proxy and reg-id. It dials
//     (TLS with the server's certificate checked against the caller's roots
//     and name; a rejected one is a *CertificateError) and registers
//     through the caller's Register function (a REGISTER with
//     +sip.instance, reg-id, ;ob and Supported: path, outbound, built with
//     sipmsg.AppendRegister). It reads Require: outbound and Flow-Timer
//     from the answer, and keeps the flow with CRLF pings on TCP/TLS or
//     STUN to the edge's SIP port on UDP.
//     The keep-alives go every 80-100 % of the Flow-Timer (else of the
//     interval the caller's Timing gives), less the wait for the answer.
//     That wait is the RTO of the flow's own round trips (RFC 6298, 1 s to
//     the RFC's 10 s, at most 2/5 of the interval). So a flow that dies at
//     any moment is found failed within one keep-alive interval: no answer
//     in time, or STUN shows a new mapping (the REGISTER answer's rport is
//     the first one); and at once when the edge answers a request sent over
//     the flow with 430 Flow Failed (ErrFlowRejected: the edge lost the flow).
//     A failed flow is formed again at once, then with the §4.5 backoff
//     (keepalive.Recovery: 30 s base when all of a Group's flows failed,
//     90 s otherwise, at most 1800 s, a random 50-100 %), on the injectable
//     clock, with an Event for the app at each step. Registered says
//     Reformed when the flow replaces one that failed: the app then sends a
//     target refresh (a re-INVITE or UPDATE with the new Contact) in the
//     dialogs set up over the old one.
//     Requests the edge sends back over the connection (RFC 5923
//     connection reuse) go to FlowConfig.OnMessage; Transact runs a client
//     transaction over the flow.
//   - Edge, for an edge proxy: it serves the caller's TCP and TLS listeners
//     and UDP sockets (one per address family for a dual-stack edge: UDP to
//     a UA goes out of the socket of its family). It answers CRLF pings
//     with pongs and STUN Binding requests on its SIP ports, and bounds what
//     peers may send (message size, slow senders, idle connections,
//     keep-alive floods: the connection is closed, nothing else is
//     affected). It names each flow with a signed token for Path, and sends
//     a request for a UA over the UA's own connection, or returns
//     ErrFlowGone so the proxy answers 430 Flow Failed.
//
// # Usage
//
// A UA with two flows (two edges, reg-id 1 and 2) in a group:
//
//	var g outbound.Group
//	f, err := outbound.NewFlow(outbound.FlowConfig{
//		Transport: sipmsg.TLS, Server: edge1, ServerName: "edge1.example.com", RootCAs: roots,
//		Register: func(ctx context.Context, f *outbound.Flow) ([]byte, error) {
//			return f.Transact(ctx, sipmsg.AppendRegister(nil, sipmsg.RegisterRequest{
//				Contact: f.Local(), Transport: f.Transport(),
//				Outbound: sipmsg.Outbound{Instance: urn, RegID: 1}, ...}))
//		},
//		OnMessage: stack.Handle, OnEvent: app.FlowEvent, Group: &g,
//	})
//	go f.Run(ctx)
//
// An edge proxy wires Edge to its own SIP logic:
//
//	e, err := outbound.NewEdge(outbound.EdgeConfig{Self: self, FlowTimer: 25 * time.Second,
//		TLS: tlsConfig, Handle: proxy.Handle})
//	go e.ServeStream(ctx, tcpListener, sipmsg.TCP)
//	go e.ServeStream(ctx, tlsListener, sipmsg.TLS)
//	go e.ServePacket(ctx, udpConn)
//	// REGISTER from a UA: add e.AppendPath(nil, flow, true) as Path;
//	// request from the registrar: flow, ok, err := e.RouteFlow(m), then
//	// e.Send(flow, b), and 430 Flow Failed on ErrFlowGone.
//
// # Concurrency
//
// Flow and Edge are safe for concurrent use. Flow.Run and the Edge's Serve
// methods block; the caller runs them in goroutines and ends them with
// their context. Callbacks run on the goroutine reading the connection:
// OnMessage and Handle must not block for long.
package outbound
