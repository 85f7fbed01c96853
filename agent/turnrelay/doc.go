// Package turnrelay gives an agent.Agent its media relay: a TURN client
// (package turn, RFC 8656) for each media socket, allocated where the
// agent's plan needs one (an address-dependent NAT mapping with no usable
// port mapping, or a forced relay).
//
// It is a package of its own so that a UA built on the agent links the TURN
// code only when it asks for a relay:
//
//	a, err := agent.New(agent.Config{SIP: sipConn, Media: []net.PacketConn{rtpConn},
//		STUN: servers, Registrar: registrar,
//		NewRelay: turnrelay.New(turn.Config{Server: turnServer, Username: u, Password: p})})
//
// The agent then names the relayed address in the plan and the SDP, sends
// media through it with SendMedia, hands relayed media back from
// HandleMediaPacket, and reports RelayLost and RelayRecovered.
//
// Where UDP is blocked (or agent.Config.RelayTransport asks), the client
// reaches the server over TCP or TLS instead (turn.Dial; the relayed side
// stays UDP) and relayed media arrives through agent.Config.OnRelayedMedia:
//
//	agent.Config{..., NewRelay: turnrelay.New(turn.Config{Server: turnServer,
//		Username: u, Password: p, DialContext: (&tls.Dialer{Config: c}).DialContext}),
//		RelayTransport: sipmsg.TLS, StreamKeepAlive: 30 * time.Second,
//		OnRelayedMedia: func(i int, b []byte, peer netip.AddrPort) { /* as HandleMediaPacket's media */ }}
package turnrelay
