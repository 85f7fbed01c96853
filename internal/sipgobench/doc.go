// Package sipgobench compares sipmsg's NAT tests and rewrites with the
// parse-modify-serialize path of github.com/emiago/sipgo on the same
// 889-byte INVITE (sipmsg/testdata/bench/invite.sip). It is a separate
// module so that the main go.mod does not carry sipgo:
//
//	cd internal/sipgobench && go test -run='^$' -bench=. -benchmem
//
// Both sides run the same six signalling NAT tests (Contact private, Via
// address/port differs, Via private, source private, Contact differs) and
// set received=/rport= in the top Via and the Contact host:port to the
// source; TestSameResult checks they agree. BenchmarkNATFix is the usual
// go benchmark: it counts sipgo's garbage collection, which its 75
// allocations per message cause. BenchmarkPaired alternates batches of
// the two and keeps the fastest batch of each, which leaves most GC and
// the load of other processes out: the conservative ratio.
package sipgobench
