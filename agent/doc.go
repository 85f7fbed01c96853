// Package agent is the NAT part of a SIP user agent, for a softphone or
// ATA firmware with a SIP stack of its own: import it, hand it the SIP and
// media sockets, and write only SIP.
//
// An Agent owns no socket, no dialog and no transaction. The stack's read
// loops call HandlePacket (SIP socket) and HandleMediaPacket (media
// sockets) first with every packet; the agent takes STUN answers, CRLF
// keep-alive noise and the answers to its own keep-alives, and gives
// everything else back. A UA without read loops of its own runs ServeSIP
// and ServeMedia, which read the sockets (never closing them) and hand it
// only SIP and media. Start then discovers, in parallel where it can:
// the NAT's behaviour and binding lifetime with STUN on the SIP socket
// itself (nat.DiscoverWith), each media socket's public address, whether
// the registrar answers STUN on its SIP port, and the gateway's port
// mappings (UPnP IGD, NAT-PMP, PCP; discovery). It decides a Plan with one
// rule per question, shared with the rest of sipnat:
//
//   - the Contact and Via sent-by: discovery.Reconcile, the rule over
//     port mapping, STUN and the local address, with
//     ipaddr.CompareLayers for CGNAT and double NAT;
//   - the keep-alive interval: binding.KeepAliveInterval of the measured
//     binding lifetime, and an honest "assumed" when it was not measured;
//   - the decision: Direct, ViaPortMapping, Relay (nothing direct brings
//     the peer's media in; the Relay slot says why) or ForceRelay. With
//     Config.NewRelay (agent/turnrelay: TURN) the agent then allocates a
//     relayed address for each media socket and names it in the SDP. The
//     relay is reached from the media socket itself over UDP. When UDP is
//     blocked or Config.RelayTransport asks, it is reached over TCP or TLS
//     (RFC 8656 section 3.1; the relayed side stays UDP); the relay then
//     reads its own stream and hands relayed media to
//     Config.OnRelayedMedia, and SendMedia still sends through it;
//   - the predictions, incoming calls and two-way audio, in words and
//     JSON, each marked Assumed where it rests on something not measured.
//
// After Start the agent keeps the flow to the registrar open (STUN to the
// registrar's SIP port when it answers STUN, RFC 5626 §4.4.2, else
// OPTIONS), keeps the media bindings open with STUN between calls, and
// reports Events: PublicAddressChanged (register again with the new
// Contact), MediaAddressChanged, FlowFailed, FlowRecovered, MappingLost,
// RelayLost, RelayRecovered, and KeepAliveShortened when the NAT moved a
// binding the keep-alives should have held. The stack feeds the registrar's answers
// back with ObserveRegister: the agent detects a SIP ALG there and follows
// the rport (RFC 3581).
//
// Over IPv6 a UA behind a stateful firewall (RFC 6092) has no NAT but the
// same problem: Decide keeps the flow open with keep-alives at half the
// firewall's measured state lifetime, or, when the gateway granted a
// pinhole (PCP or UPnP IGD:2, package discovery), needs none. Behind NAT64
// (Config.NAT64, or found by Start itself with Config.DetectNAT64, both
// through discovery.DetectNAT64) the Contact and SDP carry the IPv4
// address STUN finds through the NAT64, and Reach and AppendPeerSDP give
// the synthesised IPv6 addresses (RFC 6052) to send to an IPv4 peer.
//
// A dual-stack UA runs an Agent per family (DualStack) and picks the
// family per call with ChooseFamily, its one rule. IPv6 is taken when the
// UA's IPv6 path works (a global address, the firewall's state held by
// keep-alives or a pinhole) and the peer reaches IPv6, because IPv6 needs
// no address rewriting and no SIP ALG touches it. IPv4, with that plan's
// NAT traversal, is taken when the peer is IPv4-only, and IPv6 through the
// NAT64 when the UA has no IPv4. The peer's families come from its SDP;
// before that from the call's target, a CallTarget (ResolveTarget: an IP
// literal, or a name's DNS addresses), which ChooseFamily and
// DualStack.Choose take; else from the proxy's addresses. The
// registration's family is the same rule with the registrar as the peer.
// The choice and its reasons come in words and JSON (FamilyChoice).
//
// Decide is the decision alone, with no I/O: a diagnostic (natcheck) that
// measured the same things gets the same plan.
//
// # Usage
//
//	a, _ := agent.New(agent.Config{SIP: sipConn, Media: []net.PacketConn{rtpConn},
//		STUN: servers, Registrar: registrar, OnEvent: onEvent})
//	// in the SIP read loop: if a.HandlePacket(b, from) { continue }
//	// in the RTP read loop: if b, from = a.HandleMediaPacket(0, b, from); b == nil { continue }
//	// or, without read loops of its own:
//	//	go a.ServeSIP(ctx, onSIP)
//	//	go a.ServeMedia(ctx, 0, onRTP)
//	// send RTP with a.SendMedia(0, rtp, peer) (through the relay when the plan uses one),
//	// after a.MediaPeer(ctx, 0, peerFromSDP);
//	plan, err := a.Start(ctx)
//	// REGISTER with Contact and Via sent-by plan.Contact (a.Contact() later);
//	// a.ObserveRegister(request, answer, from) on each answer;
//	// SDP: a.AppendSDP(nil, localSDP); on PublicAddressChanged: register again.
//	defer a.Close()
//
// The socket a UA already reads cannot be given to nat.Discover without a
// CallerReads client (the STUN answers would go to the UA's loop): the
// agent always reads through the caller's loop, and Start proves that the
// loop hands packets in before it trusts silence as "UDP blocked".
//
// An Agent is safe for concurrent use. It logs only to Config.Logger and
// times everything on Config.Clock.
package agent
