package netlab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// labFootprint returns the lab's namespace names and the PIDs of every
// process inside them.
func labFootprint(lab *Lab) (names []string, pids []int) {
	for _, n := range lab.nodes() {
		names = append(names, lab.nsName(n))
		out, _ := exec.Command("ip", "netns", "pids", lab.nsName(n)).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				pids = append(pids, pid)
			}
		}
	}
	return names, pids
}

// requireGone polls until no namespace of names exists and no pid lives.
func requireGone(t *testing.T, names []string, pids []int) {
	t.Helper()
	var left []string
	err := waitFor(5*time.Second, func() (bool, error) {
		left = left[:0]
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(nsRoot, n)); err == nil {
				left = append(left, n)
			}
		}
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, strconv.Itoa(pid))
			}
		}
		return len(left) == 0, nil
	})
	require.NoError(t, err, "namespaces or processes survived teardown: %v", left)
}

// alive reports whether pid is a process that has not exited (a zombie
// waiting to be reaped has exited).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// the state follows the parenthesised command name
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// TestTeardown: after a test, and after a test that fails or panics, no
// namespace and no process of its lab remains.
func TestTeardown(t *testing.T) {
	t.Parallel()
	RequireTools(t, "ip", "rtpengine")
	var names []string
	var pids []int
	t.Run("passing test", func(t *testing.T) {
		lab := New(t, Config{Kind: EIMADF, Stund: true, Coturn: true, UPnP: true, Kamailio: true})
		lab.Start(LAN, "sleep", "600")
		_ = lab.Command(WAN, "sleep", "600").Start() // started and left running by the test
		lab.StartRtpengine(WAN, netip.AddrPortFrom(Server1, 2223), Server1, 30000, 30099)
		lab.StartRtpengine(WAN, netip.AddrPortFrom(Server1, 2224), Server1, 30100, 30199)
		names, pids = labFootprint(lab)
		require.GreaterOrEqual(t, len(pids), 8, "stund, coturn, miniupnpd, kamailio, 2 sleeps, 2 rtpengines")
	})
	requireGone(t, names, pids)

	for _, mode := range []string{"fail", "panic"} {
		t.Run("child that "+mode+"s", func(t *testing.T) {
			report := filepath.Join(t.TempDir(), "footprint")
			cmd := exec.Command(os.Args[0], "-test.run=^TestTeardownChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "NETLAB_CHILD="+mode, "NETLAB_CHILD_REPORT="+report)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the child should have failed:\n%s", out)
			data, err := os.ReadFile(report)
			require.NoError(t, err, "child output:\n%s", out)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			require.Len(t, lines, 2)
			var cpids []int
			for _, f := range strings.Fields(lines[1]) {
				pid, err := strconv.Atoi(f)
				require.NoError(t, err)
				cpids = append(cpids, pid)
			}
			require.NotEmpty(t, cpids)
			requireGone(t, strings.Fields(lines[0]), cpids)
		})
	}
}

// TestTeardownChild is the body of TestTeardown's child processes; it does
// nothing unless NETLAB_CHILD is set.
func TestTeardownChild(t *testing.T) {
	mode := os.Getenv("NETLAB_CHILD")
	if mode == "" {
		return
	}
	lab := New(t, Config{Kind: APDM, Stund: true, Coturn: true})
	lab.Start(LAN, "sleep", "600")
	lab.StartRtpengine(WAN, netip.AddrPortFrom(Server1, 2223), Server1, 30000, 30099)
	names, pids := labFootprint(lab)
	ps := make([]string, len(pids))
	for i, p := range pids {
		ps[i] = strconv.Itoa(p)
	}
	report := fmt.Sprintf("%s\n%s\n", strings.Join(names, " "), strings.Join(ps, " "))
	require.NoError(t, os.WriteFile(os.Getenv("NETLAB_CHILD_REPORT"), []byte(report), 0o644))
	if mode == "panic" {
		panic("netlab: child panics on purpose")
	}
	t.Fatal("netlab: child fails on purpose")
}
