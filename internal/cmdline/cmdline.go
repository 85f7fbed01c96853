// Package cmdline holds the command-line conventions of sipnat's example
// programs: -h prints what the program is for and exits 0, a bad flag or
// argument exits 2 with one message, any other error exits 1 with one
// message naming the program, and a run function testable without a
// process.
package cmdline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Run is a command's body: flags from args, output to stdout and stderr.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// UsageError is a mistake on the command line (exit status 2). Printed
// says flag already printed it.
type UsageError struct {
	Err     error // the mistake
	Printed bool  // the flag package already printed it
}

// Error is the message of the mistake.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a message, e.g. Usagef("-registrar is required").
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// NewFlagSet returns a flag set whose -h output starts with description
// (what the program is for) and lists the flags.
func NewFlagSet(name, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nUsage: %s [flags]\n\nFlags:\n", description, name)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args and refuses positional arguments. -h gives
// flag.ErrHelp (after the usage was printed); a bad flag a printed
// UsageError.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return &UsageError{Err: err, Printed: true}
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q (all settings are flags; see -h)", fs.Arg(0))
	}
	return nil
}

// Status prints err once, prefixed with the program's name unless flag
// printed it already, and returns the exit status: 0 for nil and -h, 2
// for a UsageError, 1 otherwise.
func Status(name string, err error, stderr io.Writer) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if !ue.Printed {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
		}
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

// Main runs run with the process's arguments and a context cancelled on
// SIGINT or SIGTERM, and exits with Status.
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(Status(name, err, os.Stderr))
}
