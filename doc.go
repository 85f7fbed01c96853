// Package sipnat is the root of a Go SDK that makes SIP user agents and SIP
// proxies work behind NAT. The root package holds no code; the work is done
// by small packages that a softphone, an ATA firmware or a proxy composes:
//
//   - [github.com/sipnat/sipnat/nat]: a STUN client that runs on the caller's
//     own SIP socket, NAT behaviour discovery (RFC 5780 mapping, filtering,
//     hairpinning, binding lifetime; the RFC 3489 classic type), CGNAT and
//     double-NAT detection, and an RFC 5780 STUN server.
//   - [github.com/sipnat/sipnat/ipaddr], [github.com/sipnat/sipnat/clock]
//     and [github.com/sipnat/sipnat/binding]: the dependency-free leaves
//     every package shares, the one table of address classes, the one Clock
//     (with a Fake for tests) and the one keep-alive interval rule.
//   - [github.com/sipnat/sipnat/discovery]: the default gateway, UPnP IGD,
//     NAT-PMP and PCP port mappings with lease renewal, IPv6 pinholes, NAT64
//     prefix discovery, and Reconcile, the rule over every public-address
//     source.
//   - [github.com/sipnat/sipnat/sipmsg]: a zero-copy SIP scanner, the NAT tests
//     a proxy runs (nathelper's nat_uac_test), and byte-exact rewriting of Via,
//     Contact, alias and Record-Route, for proxies and for UAs.
//   - [github.com/sipnat/sipnat/sdp]: SDP NAT tests and byte-exact rewriting of
//     c=, o=, m= ports and a=rtcp; [github.com/sipnat/sipnat/sdp/sdppion] does
//     the same on a pion/sdp description.
//   - [github.com/sipnat/sipnat/keepalive]: keep-alive schedulers (CRLF, STUN,
//     OPTIONS, UDP, RTP) for a UA, and a scheduler for a registrar's NATed contacts.
//   - [github.com/sipnat/sipnat/outbound]: RFC 5626 flows over UDP, TCP and
//     TLS for a UA (keep-alives, failure detection, recovery backoff) and the
//     transport half of an edge proxy (flow tokens, pongs, 430 Flow Failed).
//   - [github.com/sipnat/sipnat/turn]: a TURN client on the UA's own RTP
//     socket, or over TCP or TLS where UDP is blocked;
//     [github.com/sipnat/sipnat/agent/turnrelay] hands it to the agent.
//   - [github.com/sipnat/sipnat/rtpengine]: rtpengine's ng control protocol
//     and a set of instances with failover;
//     [github.com/sipnat/sipnat/rtpengine/sipedge] drives it from an edge
//     proxy's SIP, for UAs that do nothing for NAT themselves.
//   - [github.com/sipnat/sipnat/agent]: the NAT part of a UA in one import,
//     composed from the packages above.
//
// # How a UA composes them
//
// [github.com/sipnat/sipnat/agent] does the following for a UA; one without
// the agent composes the packages itself.
//
// A UA opens one UDP socket for SIP. Over that very socket, nat.Discover
// tells what NAT it is behind and what its public address is. Where the
// gateway grants one, discovery gets a port mapping. The chosen public
// address goes into Contact (sipmsg) and SDP (sdp). A keepalive Keeper holds
// the binding open at the interval the measured binding lifetime implies
// (binding.KeepAliveInterval), and the UA registers again when a keep-alive
// reports that the mapping moved. Where nothing direct brings the peer's
// media in, a TURN relay on the media socket does. A proxy does the mirror image: sipmsg's NAT tests and
// rewrites on every request, keepalive's contact scheduler for the NATed
// contacts its registrar holds, outbound's Edge for UAs on TCP and TLS, and
// rtpengine/sipedge for the media of UAs behind NAT.
//
// The library never owns a socket the caller needs, prints nothing (logging
// goes to a *slog.Logger the caller hands in), and keeps its API in standard
// types: netip.Addr, netip.AddrPort, net.PacketConn, context.Context.
package sipnat
