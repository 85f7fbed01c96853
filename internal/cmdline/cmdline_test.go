package cmdline

import (
	"bytes"
	"errors"
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseAndStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args      []string
		status    int
		stderrHas string
		once      string
	}{
		{[]string{"-x", "1"}, 0, "", ""},
		{[]string{"-h"}, 0, "What it does.", ""},
		{[]string{"-nope"}, 2, "flag provided but not defined: -nope", "-nope"},
		{[]string{"extra"}, 2, `prog: unexpected argument "extra"`, "extra"},
	} {
		var stderr bytes.Buffer
		fs := NewFlagSet("prog", "What it does.", &stderr)
		fs.Int("x", 0, "a number")
		err := Parse(fs, tc.args)
		require.Equal(t, tc.status, Status("prog", err, &stderr), "%v", tc.args)
		require.Contains(t, stderr.String(), tc.stderrHas)
		if tc.once != "" {
			require.Equal(t, 1, bytes.Count(stderr.Bytes(), []byte("provided but not defined"))+bytes.Count(stderr.Bytes(), []byte("unexpected argument")), stderr.String())
		}
	}
	var stderr bytes.Buffer
	require.Equal(t, 2, Status("prog", Usagef("-registrar is required"), &stderr))
	require.Equal(t, "prog: -registrar is required\n", stderr.String())
	stderr.Reset()
	require.Equal(t, 1, Status("prog", errors.New("boom"), &stderr))
	require.Equal(t, "prog: boom\n", stderr.String())
	require.Equal(t, 0, Status("prog", flag.ErrHelp, &stderr))
}
