// Package keepalive keeps NAT bindings open: schedulers for a user agent
// (CRLF, STUN, OPTIONS, UDP, RTP keep-alives; RFC 5626, RFC 6263) and for a
// proxy that pings the NATed contacts of its registrar.
package keepalive
