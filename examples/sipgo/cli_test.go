package main

import (
	"testing"

	"github.com/sipnat/sipnat/internal/cmdline/cmdlinetest"
)

// TestCommandLine: -h explains and exits 0; a bad flag, an extra argument
// or a missing or bad setting exits 2 with one message naming it.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	cmdlinetest.RunTable(t, "sipgo", run, []cmdlinetest.Case{
		{Args: []string{"-h"}, Status: 0, Says: "sipgo is a SIP user agent"},
		{Args: []string{"-bogus"}, Status: 2, Says: "flag provided but not defined: -bogus"},
		{Args: []string{"-json", "extra"}, Status: 2, Says: `sipgo: unexpected argument "extra"`},
		{Args: nil, Status: 2, Says: `sipgo: -registrar "": want address:port`},
		{Args: []string{"-registrar", "127.0.0.1:5060", "-sip-port", "0"}, Status: 2, Says: "-sip-port 0: want 1-65535"},
		{Args: []string{"-registrar", "127.0.0.1:5060", "-stun", "x"}, Status: 2, Says: `sipgo: -stun "x"`},
	})
}
