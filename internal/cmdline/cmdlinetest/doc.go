// Package cmdlinetest checks that an example program keeps the command-line
// conventions of package cmdline: -h explains the program and exits 0, a bad
// flag, an extra argument or a missing setting exits 2, and every message is
// said once, with the program's name in front at most once.
//
// It is a separate package so that the programs themselves do not link the
// testing package.
//
// # Usage
//
// From a program's test:
//
//	cmdlinetest.RunTable(t, "natproxy", parse, []cmdlinetest.Case{
//		{Args: []string{"-h"}, Status: 0, Says: "natproxy is a small SIP edge proxy"},
//		{Args: []string{"-bogus"}, Status: 2, Says: "flag provided but not defined: -bogus"},
//	})
package cmdlinetest
