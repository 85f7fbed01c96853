package cmdlinetest_test

import (
	"context"
	"fmt"
	"io"

	"github.com/sipnat/sipnat/internal/cmdline"
	"github.com/sipnat/sipnat/internal/cmdline/cmdlinetest"
)

func hello(_ context.Context, args []string, _, stderr io.Writer) error {
	fs := cmdline.NewFlagSet("hello", "hello greets.", stderr)
	fs.String("name", "world", "who to greet")
	return cmdline.Parse(fs, args)
}

func Example() {
	for _, c := range []cmdlinetest.Case{
		{Args: []string{"-h"}, Status: 0, Says: "hello greets."},
		{Args: []string{"-bogus"}, Status: 2, Says: "flag provided but not defined: -bogus"},
		{Args: []string{"extra"}, Status: 0, Says: "unexpected"},
	} {
		fmt.Println(cmdlinetest.Check("hello", hello, c) == nil)
	}
	// Output:
	// true
	// true
	// false
}
