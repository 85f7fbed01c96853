// Package binding holds sipnat's rules about a NAT binding (RFC 4787: the
// mapping a NAT keeps for a flow): how often a UA must refresh it, given
// how long it lives. It is a leaf with no dependencies, so that nat (which
// measures the lifetime), keepalive (which sends the keep-alives) and agent
// (which plans them) apply one rule without keepalive linking nat's STUN
// dependencies.
//
// # Usage
//
//	interval := binding.KeepAliveInterval(res.Lifetime) // 0 (unknown): DefaultKeepAlive
//
// Its functions are pure and safe for concurrent use.
package binding
