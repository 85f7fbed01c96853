// Package nat finds out what NAT a SIP user agent is behind, over the UA's own
// socket, and serves the STUN that lets it.
//
// It holds a STUN client (RFC 8489, RFC 3489 fallback), NAT behaviour
// discovery (RFC 5780, RFC 4787), CGNAT and double-NAT detection, an RFC 5780
// STUN server, the address classification (RFC 1918, RFC 6598, loopback,
// link-local, documentation ranges) that the other sipnat packages ask, and
// the Clock interface they share.
package nat
