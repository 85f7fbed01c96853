package rtt

import "time"

// granularity is the clock granularity G of RFC 6298 section 2.
const granularity = time.Millisecond

// Estimator keeps SRTT and RTTVAR. The zero value has no sample.
type Estimator struct {
	srtt, rttvar time.Duration
	n            int
}

// Add folds in one round-trip sample (RFC 6298 (2.2) for the first, (2.3)
// for the next). A negative sample counts as zero.
func (e *Estimator) Add(r time.Duration) {
	r = max(r, 0)
	if e.n == 0 {
		e.srtt, e.rttvar = r, r/2
	} else {
		e.rttvar = (3*e.rttvar + (e.srtt - r).Abs()) / 4
		e.srtt = (7*e.srtt + r) / 8
	}
	e.n++
}

// Samples returns how many samples were folded in.
func (e *Estimator) Samples() int { return e.n }

// SRTT returns the smoothed round-trip time, 0 without a sample.
func (e *Estimator) SRTT() time.Duration { return e.srtt }

// RTO returns SRTT + max(G, 4·RTTVAR) bounded to [lo, hi]; hi when there is
// no sample yet (the caller's conservative first timeout). When lo > hi, hi
// wins.
func (e *Estimator) RTO(lo, hi time.Duration) time.Duration {
	if e.n == 0 {
		return hi
	}
	return min(max(e.srtt+max(granularity, 4*e.rttvar), lo), hi)
}
