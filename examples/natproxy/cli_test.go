package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/cmdline/cmdlinetest"
)

// TestCommandLine: -h explains and exits 0; a bad flag, an extra argument
// or a missing setting exits 2 with one message naming it.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	cmdlinetest.RunTable(t, "natproxy", parse, []cmdlinetest.Case{
		{Args: []string{"-h"}, Status: 0, Says: "natproxy is a small SIP edge proxy"},
		{Args: []string{"-h"}, Status: 0, Says: "-max-conns-per-source int"},
		{Args: []string{"-bogus"}, Status: 2, Says: "flag provided but not defined: -bogus"},
		{Args: []string{"-h", "extra"}, Status: 0, Says: "natproxy is a small SIP edge proxy"},
		{Args: []string{"-v", "extra"}, Status: 2, Says: `natproxy: unexpected argument "extra"`},
		{Args: nil, Status: 2, Says: "-upstream is required"},
		{Args: []string{"-upstream", "127.0.0.1:5060", "-max-conns-per-source", "-1"}, Status: 2,
			Says: "natproxy: -max-conns-per-source -1: want 0 (the default) or more"},
		{Args: []string{"-upstream", "127.0.0.1:5060", "-max-conns-per-source", "two"}, Status: 2,
			Says: `invalid value "two" for flag -max-conns-per-source`},
	})
}

// TestMaxConnsPerSourceFlag runs the command with a TCP listener on
// loopback: with -max-conns-per-source 2 a third connection from the same
// address is closed at accept while the first two get their pongs; without
// the flag (a default of 1000) all three are served.
func TestMaxConnsPerSourceFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		flags  []string
		served int
	}{
		{"-max-conns-per-source 2", []string{"-max-conns-per-source", "2"}, 2},
		{"default", nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			out, w := io.Pipe()
			args := append([]string{"-listen", "127.0.0.1:0", "-advertise", "127.0.0.1:5060", "-upstream", "127.0.0.1:9", "-tcp", "127.0.0.1:0"}, tc.flags...)
			ran := make(chan error, 1)
			go func() { ran <- parse(ctx, args, w, io.Discard); w.Close() }()
			defer func() { cancel(); require.NoError(t, <-ran) }()
			addr := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if a, ok := strings.CutPrefix(sc.Text(), "natproxy: TCP on "); ok {
						addr <- a
					}
				}
			}()
			var tcp string
			select {
			case tcp = <-addr:
			case err := <-ran:
				ran <- err
				t.Fatalf("natproxy ended: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("natproxy did not say where it listens on TCP")
			}
			served := 0
			for i := range 3 {
				c, err := net.Dial("tcp", tcp)
				require.NoError(t, err)
				defer c.Close()
				require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
				_, _ = c.Write([]byte("\r\n\r\n")) // a CRLF ping
				pong := make([]byte, 2)
				if _, err := io.ReadFull(c, pong); err == nil {
					require.Equal(t, "\r\n", string(pong), "connection %d", i+1)
					served++
				} else {
					require.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET),
						"connection %d is closed, not left hanging: %v", i+1, err)
				}
			}
			require.Equal(t, tc.served, served)
		})
	}
}
