// Package sipgobench compares sipmsg's NAT tests and rewrites with the
// parse-modify-serialize path of github.com/emiago/sipgo on the same
// 889-byte INVITE (sipmsg/testdata/bench/invite.sip). It is a separate
// module so that the main go.mod does not carry sipgo:
//
//	cd internal/sipgobench && go test -run='^$' -bench=. -benchmem
package sipgobench
