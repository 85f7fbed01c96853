package cmdlinetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sipnat/sipnat/internal/cmdline"
)

// Case is one command line and what the program must do with it.
type Case struct {
	Args   []string // the command line, without the program's name
	Status int      // the exit status cmdline.Status gives
	Says   string   // what stderr must say, exactly once
}

// Check runs c.Args through run (the program's body, without a process)
// and returns nil when the exit status is c.Status, stderr says c.Says
// exactly once, and no message names the program twice ("x: x: ...").
// Otherwise the error says what differed, with stderr.
func Check(name string, run cmdline.Run, c Case) error {
	var out, errOut bytes.Buffer
	err := run(context.Background(), c.Args, &out, &errOut)
	status := cmdline.Status(name, err, &errOut)
	said := errOut.String()
	switch {
	case status != c.Status:
		return fmt.Errorf("%q: exit status %d, want %d (error %v); stderr:\n%s", c.Args, status, c.Status, err, said)
	case strings.Count(said, c.Says) != 1:
		return fmt.Errorf("%q: stderr says %q %d times, want once; stderr:\n%s", c.Args, c.Says, strings.Count(said, c.Says), said)
	case strings.Contains(said, name+": "+name+":"):
		return fmt.Errorf("%q: the program's name is doubled; stderr:\n%s", c.Args, said)
	}
	return nil
}

// RunTable checks every case with Check, each as a subtest named by its
// arguments, in parallel.
func RunTable(t *testing.T, name string, run cmdline.Run, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(strings.Join(c.Args, " "), func(t *testing.T) {
			t.Parallel()
			if err := Check(name, run, c); err != nil {
				t.Error(err)
			}
		})
	}
}
