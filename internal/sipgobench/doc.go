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
// the load of other processes out: the conservative ratio. Both also time
// a crude floor (internal/benchfloor: bytes.Index finds what is known to
// change, the rest is copied). Each message comes from the next of 16
// sources, on both sides, as a UDP proxy sees them. On a shared 2-vCPU EPYC
// VM (08:07-08:11 UTC, load average 2-4 from other sessions' lab tests,
// -benchtime=2s -count 5, three runs): sipmsg 0.45-0.47 µs, sipgo
// 4.8-6.0 µs, the floor 0.12 µs (x-faster 10.4-13.3, in the quietest run
// 10.4-10.7; x-floor 3.8-4.0). sipgo's minimum moves between 4.6 and 6.5 µs
// from run to run with where its garbage collection falls. sipmsg's moves
// by up to 15 ns between processes and with where the linker places its
// functions (the same code built with -ldflags=-funcalign=64 took 0.47
// instead of 0.45 µs), which is as much as most single changes to it make.
package sipgobench
