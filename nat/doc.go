// Package nat finds out what NAT a SIP user agent is behind, over the UA's own
// socket, and serves the STUN that lets it.
//
// It holds:
//
//   - a STUN client (RFC 8489, with RFC 3489 fallback) that runs Binding
//     transactions over a caller-owned net.PacketConn, so the binding found is
//     the SIP socket's own: [Client], [NewClient], [Client.Binding],
//     [Client.BindingWith], [Client.HandlePacket], [IsSTUN], [ParseResponse];
//   - NAT behaviour discovery (RFC 5780, RFC 4787 terms): mapping, filtering,
//     hairpinning, port preservation and binding lifetime, the RFC 3489 type,
//     CGNAT and double-NAT detection, and a verdict for SIP: [Discover],
//     [DiscoverWith], [Client.Discover], [Result];
//   - an RFC 5780 STUN server that also answers RFC 3489 clients and is never
//     an amplifier or reflector: [Server], [NewServer];
//   - IPv6: discovery runs the same tests over IPv6, where mapping "none"
//     with address(-and-port)-dependent filtering is a stateful firewall
//     (RFC 6092) whose state lifetime LifetimeMax measures like a binding's;
//     on an IPv6-only network, discovery.DetectNAT64 finds the NAT64 prefix
//     (RFC 7050 DNS64 or RFC 7225 PCP) and [DiscoverConfig].NAT64 lets
//     discovery run through the NAT64 to an IPv4 server, so [Result].Public
//     is the IPv4 address to write.
//
// Address classes (RFC 1918, RFC 6598, ...) come from package
// [github.com/sipnat/sipnat/ipaddr] and time from
// [github.com/sipnat/sipnat/clock], the dependency-free leaves every sipnat
// package shares.
//
// Messages are encoded and decoded with github.com/pion/stun/v2; the API uses
// only standard types (netip.AddrPort, net.PacketConn, context.Context,
// time.Duration).
//
// RFCs: RFC 8489 (STUN; transactions, RTO 500 ms doubling, Rc 7, Rm 16,
// FINGERPRINT, XOR-MAPPED-ADDRESS), RFC 5389, RFC 3489 (classic STUN:
// MAPPED-ADDRESS, CHANGED-ADDRESS, SOURCE-ADDRESS, 128-bit transaction IDs,
// the NAT types), RFC 5780 (behaviour discovery: CHANGE-REQUEST,
// OTHER-ADDRESS, RESPONSE-ORIGIN, RESPONSE-PORT), RFC 4787 (NAT behaviour
// requirements), RFC 6598 (shared address space), RFC 3581 (rport), RFC 5626
// (keep-alives), RFC 5769 (test vectors), RFC 6092 (IPv6 home firewalls),
// RFC 7050 and RFC 6052 (NAT64 prefix discovery and addresses).
//
// # Usage
//
// The public address of the SIP socket, with the client reading the socket
// until Close:
//
//	c := nat.NewClient(conn, nat.ClientConfig{})
//	defer c.Close()
//	public, err := c.Binding(ctx, server)
//
// When the SIP stack owns the read loop, the client only sends and the caller
// hands packets in; HandlePacket returns false for everything that is not
// the client's (SIP, CRLF keep-alives, STUN requests from peers):
//
//	c := nat.NewClient(conn, nat.ClientConfig{CallerReads: true})
//	for {
//		n, from, err := conn.ReadFromUDPAddrPort(buf)
//		...
//		if !c.HandlePacket(buf[:n], from) {
//			handleSIP(buf[:n], from)
//		}
//	}
//
// Classifying the NAT (Client.Discover runs it through a CallerReads
// client when the caller's loop reads the socket; set LifetimeMax to
// measure the binding lifetime):
//
//	res, err := nat.Discover(ctx, conn, server)
//	fmt.Print(res)                     // readable report
//	if res.SIP.MediaRelay { ... }      // symmetric NAT: relay media
//	keepAlive := res.SIP.KeepAlive
//
// Discover picks its method from what the server answers: full RFC 5780
// tests when it sends OTHER-ADDRESS; the same probes with CHANGED-ADDRESS for
// an RFC 3489 server such as stund; a two-server comparison ("does the
// mapping vary by destination") when the servers have no alternate address.
// Independent probes run concurrently. Probes the NAT may filter are paced
// by an RTO derived from the round-trip time of the first binding (RFC 8489
// with RFC 6298's estimator, at least 10 ms). Their silence counts once
// they have been sent 12 times, 0.2 s have passed, and three control
// Bindings have come back after that. So a classification takes about 0.2 s
// when the RTT is small (turnutils_natdiscovery takes 3 to 6 s on filtering
// NATs in the testbed) and a few dozen RTTs when it is not, and it stays
// right with 20 % loss and on a busy machine. ProbeTimeout (1 s by default)
// bounds each such wait.
//
// A STUN server for operators, on two addresses and two ports:
//
//	srv, err := nat.NewServer(nat.ServerConfig{Primary: p, AltPort: pa, AltAddr: ap, AltBoth: aa})
//	go srv.Serve(ctx)
//	defer srv.Close()
//
// Errors wrap the sentinels [ErrNoResponse], [ErrMalformed], [ErrNotSTUN],
// [ErrClosed] and [ErrNoServer], and the typed [*ServerError]; test them with
// errors.Is and errors.As.
//
// # Concurrency
//
// Client, Server and Result.String are safe for concurrent use. A Client may
// have any number of transactions in flight at once (they are matched by
// their 96-bit transaction IDs, and answers from unexpected sources are
// dropped); HandlePacket may be called from several goroutines. Client.Close
// and Server.Close never close the caller's sockets: they wake their readers
// with a past read deadline and clear it again. A Result is a plain value:
// do not change it while another goroutine reads it. Retransmissions,
// lifetime probes and rate limits take their time from the [clock.Clock] in the
// config, so tests can use a [clock.Fake].
package nat
