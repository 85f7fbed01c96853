package keepalive

import (
	"math/rand/v2"
	"time"

	"github.com/sipnat/sipnat/binding"
)

// Default base intervals, used when neither a fixed interval, a measured
// binding lifetime nor a negotiated one is known. The stream value makes
// the jittered interval 96–120 s, the range RFC 5626 §4.4.1 recommends for
// connection-oriented transports; the datagram value stays under the 30 s
// that many NATs (and the Linux default) keep an idle UDP binding.
const (
	DefaultStreamInterval   = 120 * time.Second
	DefaultDatagramInterval = binding.DefaultKeepAlive
)

// DefaultLifetimeFraction is the share of a measured binding lifetime used
// as the keep-alive interval when Timing.Fraction is zero: with RFC 5626
// jitter the keep-alives then come at 40–50 % of the lifetime, so one lost
// keep-alive does not let the binding expire.
const DefaultLifetimeFraction = 0.5

// Timing says how often a Keeper sends. Fields are consulted in order:
// a fixed Interval wins; else an interval derived from the binding
// Lifetime. A Negotiated interval (the RFC 6223 "keep" Via parameter, or an
// RFC 5626 Flow-Timer) then caps it: the registrar's value is an upper
// bound the UA must honour, and a shorter one the NAT needs is kept. With
// neither an interval nor a lifetime, the negotiated value is the interval,
// and without that either, the default for the kind.
type Timing struct {
	Interval   time.Duration // fixed base interval; 0: derive it
	Lifetime   time.Duration // binding lifetime measured by nat (RFC 5780 §4.6); 0: unknown
	Fraction   float64       // interval = Lifetime*Fraction; 0 means binding.KeepAliveInterval (half, at least 1 s; ignored when Margin is set)
	Margin     time.Duration // interval = Lifetime-Margin instead of the fraction, when > 0
	Negotiated time.Duration // RFC 6223 keep / RFC 5626 Flow-Timer value; 0: none
	NoJitter   bool          // send at exactly the interval (tests, or RTP on a fixed schedule)
}

// Base returns the interval before jitter for a flow; stream selects the
// stream default (CRLF over TCP/TLS) over the datagram one.
func (t Timing) Base(stream bool) time.Duration {
	d := t.Interval
	if d <= 0 && t.Lifetime > 0 {
		switch {
		case t.Fraction == 0 && t.Margin <= 0:
			d = binding.KeepAliveInterval(t.Lifetime) // sipnat's one rule
		case t.Margin > 0:
			d = t.Lifetime - t.Margin
		default:
			f := t.Fraction
			if f <= 0 || f > 1 {
				f = DefaultLifetimeFraction
			}
			d = time.Duration(float64(t.Lifetime) * f)
		}
		if d <= 0 {
			d = t.Lifetime / 2
		}
	}
	if d <= 0 && t.Negotiated <= 0 {
		d = DefaultDatagramInterval
		if stream {
			d = DefaultStreamInterval
		}
	}
	if t.Negotiated > 0 && (d <= 0 || t.Negotiated < d) {
		d = t.Negotiated
	}
	if d < minInterval {
		d = minInterval
	}
	return d
}

// minInterval keeps a misconfigured flow from flooding the network.
const minInterval = 100 * time.Millisecond

// Jitter returns a duration drawn uniformly from [80 %, 100 %] of d, as
// RFC 5626 §4.4.1 and RFC 6223 §4.4.1 require of keep-alive intervals, using
// r (nil: math/rand/v2's global source).
func Jitter(d time.Duration, r rand.Source) time.Duration {
	if d <= 0 {
		return 0
	}
	lo := d - d/5
	span := uint64(d-lo) + 1
	var u uint64
	if r == nil {
		u = rand.Uint64()
	} else {
		u = r.Uint64()
	}
	return lo + time.Duration(u%span)
}

// Backoff returns the wait before the next probe of a failed flow after
// failures consecutive failures (1 for the first): base doubled per
// further failure, capped at max, like the retry wait of RFC 5626 §4.5.
func Backoff(base, max time.Duration, failures int) time.Duration {
	if failures < 1 {
		failures = 1
	}
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	if max > 0 && d > max {
		d = max
	}
	return d
}
