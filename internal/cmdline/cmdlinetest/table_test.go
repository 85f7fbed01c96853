package cmdlinetest

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/cmdline"
)

// TestCheck: each way a program can break the conventions is caught.
func TestCheck(t *testing.T) {
	t.Parallel()
	good := func(_ context.Context, args []string, _, stderr io.Writer) error {
		fs := cmdline.NewFlagSet("p", "p does things.", stderr)
		return cmdline.Parse(fs, args)
	}
	saysTwice := func(_ context.Context, _ []string, _, stderr io.Writer) error {
		fmt.Fprintln(stderr, "p: broken")
		return fmt.Errorf("broken")
	}
	doubled := func(context.Context, []string, io.Writer, io.Writer) error {
		return fmt.Errorf("p: wrong")
	}
	for _, tc := range []struct {
		name  string
		run   cmdline.Run
		c     Case
		wrong string // "" when Check passes
	}{
		{"help", good, Case{[]string{"-h"}, 0, "p does things."}, ""},
		{"bad flag", good, Case{[]string{"-x"}, 2, "-x"}, ""},
		{"extra", good, Case{[]string{"a"}, 2, `p: unexpected argument "a"`}, ""},
		{"status", good, Case{[]string{"a"}, 0, "unexpected"}, "exit status 2, want 0"},
		{"missing", good, Case{[]string{"-h"}, 0, "nowhere"}, "0 times"},
		{"twice", saysTwice, Case{nil, 1, "broken"}, "2 times"},
		{"doubled name", doubled, Case{nil, 1, "wrong"}, "doubled"},
	} {
		err := Check("p", tc.run, tc.c)
		if tc.wrong == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		require.ErrorContains(t, err, tc.wrong, tc.name)
	}
}

// TestRunTable runs a table as subtests.
func TestRunTable(t *testing.T) {
	t.Parallel()
	RunTable(t, "p", func(_ context.Context, args []string, _, stderr io.Writer) error {
		return cmdline.Parse(cmdline.NewFlagSet("p", "p does things.", stderr), args)
	}, []Case{{Args: []string{"-h"}, Status: 0, Says: "p does things."}})
}
