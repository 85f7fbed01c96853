package main

import (
	"testing"

	"github.com/sipnat/sipnat/internal/cmdline/cmdlinetest"
)

// TestCommandLine: -h explains and exits 0; a bad flag, an extra argument
// or a missing setting exits 2 with one message naming it.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	cmdlinetest.RunTable(t, "natproxy", parse, []cmdlinetest.Case{
		{Args: []string{"-h"}, Status: 0, Says: "natproxy is a small SIP edge proxy"},
		{Args: []string{"-bogus"}, Status: 2, Says: "flag provided but not defined: -bogus"},
		{Args: []string{"-h", "extra"}, Status: 0, Says: "natproxy is a small SIP edge proxy"},
		{Args: []string{"-v", "extra"}, Status: 2, Says: `natproxy: unexpected argument "extra"`},
		{Args: nil, Status: 2, Says: "-upstream is required"},
	})
}
