package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sipnat/sipnat/internal/cmdline"
	"github.com/stretchr/testify/require"
)

// TestCommandLine: -h explains and exits 0; a bad flag, an extra argument
// or a missing setting exits 2 with one message naming it.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		status int
		has    string
	}{
		{[]string{"-h"}, 0, "natproxy is a small SIP edge proxy"},
		{[]string{"-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"-h", "extra"}, 0, "natproxy is a small SIP edge proxy"},
		{[]string{"-v", "extra"}, 2, `natproxy: unexpected argument "extra"`},
		{nil, 2, "-upstream is required"},
	} {
		var out, errOut bytes.Buffer
		err := parse(context.Background(), tc.args, &out, &errOut)
		require.Equal(t, tc.status, cmdline.Status("natproxy", err, &errOut), "%v: %v", tc.args, err)
		require.Contains(t, errOut.String(), tc.has, tc.args)
		require.Equal(t, 1, strings.Count(errOut.String(), tc.has), "said once: %s", errOut.String())
		require.NotContains(t, errOut.String(), "natproxy: natproxy:", "no doubled prefix")
	}
}
