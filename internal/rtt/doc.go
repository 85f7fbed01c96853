// Package rtt folds round-trip time samples into a retransmission timeout
// the way RFC 6298 section 2 does (alpha 1/8, beta 1/4, K 4, 1 ms clock
// granularity as RFC 8489 asks). It is a dependency-free leaf: nat paces its
// discovery probes with it, keepalive derives how long a keep-alive waits for
// its answer.
//
// # Usage
//
//	var e rtt.Estimator
//	e.Add(sample)
//	timeout := e.RTO(time.Second, 10*time.Second) // RFC 6298's 1 s floor, an upper bound
//
// An Estimator is not safe for concurrent use; its owner's lock guards it.
package rtt
