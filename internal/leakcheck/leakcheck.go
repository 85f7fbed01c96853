// Package leakcheck finds goroutines and sockets that sipnat code left
// behind in tests: Check around one test, Main around a package's tests.
// It needs no dependency (the standard library's runtime stacks and
// /proc/self/fd).
package leakcheck

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Wait is how long Check and Main give goroutines and sockets to go away
// (a Close may return before its goroutines have unwound).
const Wait = 5 * time.Second

// Check snapshots the goroutines and sockets alive now and, when the test
// ends (after the cleanups registered after it, so call it first), fails
// the test if goroutines running sipnat code or sockets opened since are
// still there after Wait. The test must not be parallel: others' goroutines
// would count as its own.
func Check(t testing.TB) {
	t.Helper()
	before := Snapshot()
	t.Cleanup(func() {
		if err := settle(before, Wait); err != nil {
			t.Error(err)
		}
	})
}

// Main runs the tests of a package (from TestMain) and fails the run when
// goroutines running sipnat code or sockets the tests opened outlive them.
func Main(m *testing.M) {
	before := Snapshot()
	code := m.Run()
	if code == 0 {
		if err := settle(before, Wait); err != nil {
			fmt.Fprintln(os.Stderr, "leakcheck:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// State is what Snapshot saw: sipnat goroutines and open sockets.
type State struct {
	goroutines map[string]int // sipnat goroutines by what they run: count
	sockets    map[string]int // "fd -> socket:[inode]"
}

// Snapshot records the goroutines running sipnat code and the open
// sockets, for Settle.
func Snapshot() State {
	g, _ := ours()
	return State{goroutines: g, sockets: sockets()}
}

// Settle waits up to wait until no goroutine running sipnat code and no
// socket is left beyond those of s, and reports what is left otherwise.
// Call it from a test that is not parallel.
func (s State) Settle(wait time.Duration) error { return settle(s, wait) }

func settle(before State, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := time.Millisecond
	for {
		now, stacks := ours()
		g, s := diff(before.goroutines, now), diff(before.sockets, sockets())
		if len(g) == 0 && len(s) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for k, n := range now {
				if n > before.goroutines[k] {
					fmt.Fprintf(&b, "%d more %s, one of them:\n%s\n\n", n-before.goroutines[k], k, stacks[k])
				}
			}
			return fmt.Errorf("%d goroutine kind(s) and %d socket(s) leaked:\n%s\nsockets: %v", len(g), len(s), b.String(), s)
		}
		time.Sleep(delay) // polling for goroutines to unwind: there is no event to wait on
		delay = min(2*delay, 100*time.Millisecond)
	}
}

func diff(before, now map[string]int) []string {
	var out []string
	for k, n := range now {
		if n > before[k] {
			out = append(out, fmt.Sprintf("%d x %s", n-before[k], k))
		}
	}
	slices.Sort(out)
	return out
}

// ours returns the stacks of goroutines that run sipnat code (other than
// this package and the test functions themselves), without headers,
// arguments and offsets, so that a goroutine is recognised by what it runs.
func ours() (map[string]int, map[string]string) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out, stacks := map[string]int{}, map[string]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := strings.TrimSpace(string(g))
		if !strings.Contains(s, "github.com/sipnat/sipnat/") ||
			strings.Contains(s, "sipnat/internal/leakcheck.Main") ||
			strings.Contains(s, "testing.tRunner") || strings.Contains(s, "testing.(*M).") {
			continue
		}
		// a goroutine is known by the function that started it: its own
		// frames change as it runs (a wrapper before it starts, then where
		// it waits), its creator does not
		key := s
		if k := strings.LastIndex(s, "\ncreated by "); k >= 0 {
			key = s[k+1:]
			if e := strings.IndexByte(key, '\n'); e >= 0 {
				key = key[:e]
			}
			if e := strings.Index(key, " in goroutine "); e >= 0 {
				key = key[:e]
			}
		}
		out[key]++
		stacks[key] = s
	}
	return out, stacks
}

// sockets returns the open socket descriptors of the process.
func sockets() map[string]int {
	out := map[string]int{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return out
	}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(target, "socket:") {
			out[e.Name()+" -> "+target]++
		}
	}
	return out
}
