package main

import (
	"testing"

	"github.com/sipnat/sipnat/internal/cmdline/cmdlinetest"
)

// TestCommandLine: -h explains and exits 0; a bad flag, an extra argument
// or a missing setting exits 2 with one message naming it.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	cmdlinetest.RunTable(t, "softphone", run, []cmdlinetest.Case{
		{Args: []string{"-h"}, Status: 0, Says: "softphone is a small SIP user agent"},
		{Args: []string{"-bogus"}, Status: 2, Says: "flag provided but not defined: -bogus"},
		{Args: []string{"-h", "extra"}, Status: 0, Says: "softphone is a small SIP user agent"},
		{Args: []string{"-json=false", "extra"}, Status: 2, Says: `softphone: unexpected argument "extra"`},
		{Args: nil, Status: 2, Says: "-registrar is required"},
		{Args: []string{"-registrar", "127.0.0.1:5060", "-turn", "127.0.0.1:3478", "-turn-transport", "sctp"}, Status: 2, Says: `-turn-transport "sctp": want udp, tcp or tls`},
		{Args: []string{"-registrar", "127.0.0.1:5060", "-dual", "127.0.0.2:5060"}, Status: 2, Says: "-dual 127.0.0.2:5060: in the same address family as -registrar 127.0.0.1:5060; want the other one"},
		{Args: []string{"-registrar", "127.0.0.1:5060", "-turn-keepalive", "-1s"}, Status: 2, Says: "-turn-keepalive -1s: want a positive duration"},
	})
}
