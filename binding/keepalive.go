package binding

import "time"

// DefaultKeepAlive is the keep-alive interval when the binding lifetime is
// not known: below the 30 s many NATs use, although RFC 4787 REQ-5 asks for
// 2 minutes. An interval built on it is an assumption, not a measurement.
const DefaultKeepAlive = 25 * time.Second

// MinKeepAlive is the shortest interval KeepAliveInterval gives: a NAT that
// forgets faster than twice this cannot be kept open by keep-alives.
const MinKeepAlive = time.Second

// KeepAliveInterval is sipnat's one rule from a binding lifetime to the
// keep-alive interval that keeps the binding open: half the lifetime (so
// one lost keep-alive does not let it expire), at least MinKeepAlive; with
// the lifetime unknown (0), DefaultKeepAlive. The verdict of nat.Discover, the
// keepalive package's Timing and the agent package all use it.
func KeepAliveInterval(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		return DefaultKeepAlive
	}
	return max(lifetime/2, MinKeepAlive)
}
