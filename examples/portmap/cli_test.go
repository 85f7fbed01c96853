package main

import (
	"testing"

	"github.com/sipnat/sipnat/internal/cmdline/cmdlinetest"
)

// TestCommandLine: -h explains and exits 0; a bad flag, an extra argument
// or a missing setting exits 2 with one message naming it.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	cmdlinetest.RunTable(t, "portmap", run, []cmdlinetest.Case{
		{Args: []string{"-h"}, Status: 0, Says: "portmap asks the home gateway"},
		{Args: []string{"-bogus"}, Status: 2, Says: "flag provided but not defined: -bogus"},
		{Args: []string{"-h", "extra"}, Status: 0, Says: "portmap asks the home gateway"},
		{Args: []string{"-json=false", "extra"}, Status: 2, Says: `portmap: unexpected argument "extra"`},
		{Args: []string{"-port", "0"}, Status: 2, Says: "-port 0: want 1-65535"},
	})
}
