package keepalive

import (
	"math/rand/v2"
	"time"
)

// Flow-recovery backoff of RFC 5626 §4.5.
const (
	RecoveryBaseAllFailed = 30 * time.Second   // base-time when every flow of the UA failed
	RecoveryBaseSomeOK    = 90 * time.Second   // base-time when another flow still works
	RecoveryMax           = 1800 * time.Second // max-time
)

// Recovery is the RFC 5626 §4.5 backoff between attempts to form a new
// flow after one failed: wait-time = min(Max, base · 2^failures), and the
// UA waits a uniformly random 50–100 % of it. The zero value is the RFC's
// numbers; tests and labs shorten them.
type Recovery struct {
	BaseAllFailed time.Duration // 0: RecoveryBaseAllFailed
	BaseSomeOK    time.Duration // 0: RecoveryBaseSomeOK
	Max           time.Duration // 0: RecoveryMax
}

// Ceiling returns wait-time before the random part: min(Max, base ·
// 2^failures), with base by allFailed. failures counts the attempts to form
// the flow that failed in a row (1 after the first).
func (r Recovery) Ceiling(failures int, allFailed bool) time.Duration {
	base, maxT := r.BaseSomeOK, r.Max
	if allFailed {
		base = r.BaseAllFailed
		if base <= 0 {
			base = RecoveryBaseAllFailed
		}
	} else if base <= 0 {
		base = RecoveryBaseSomeOK
	}
	if maxT <= 0 {
		maxT = RecoveryMax
	}
	d := base
	for i := 0; i < failures && d < maxT; i++ {
		d *= 2
	}
	return min(d, maxT)
}

// Wait returns the time to wait before the next attempt: a uniformly random
// 50–100 % of Ceiling, drawn from src (nil: math/rand/v2).
func (r Recovery) Wait(failures int, allFailed bool, src rand.Source) time.Duration {
	c := r.Ceiling(failures, allFailed)
	half := c / 2
	var u uint64
	if src == nil {
		u = rand.Uint64()
	} else {
		u = src.Uint64()
	}
	return half + time.Duration(u%(uint64(c-half)+1))
}
