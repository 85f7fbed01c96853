package netlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Lab is one running testbed: its namespaces, links, NAT rules and services.
// It is torn down by t.Cleanup.
type Lab struct {
	t     testing.TB
	cfg   Config
	id    string // namespace prefix, unique per lab on this machine
	dir   string
	truth Truth

	mu        sync.Mutex
	seq       int
	procs     []*Proc
	svc       map[string]*Proc // services by name (stund, coturn, miniupnpd, kamailio)
	certs     Certs            // kamailio's TLS certificate and its CA (KamailioTLS)
	portRange [2]uint16        // set by SetNATPortRange
	ca        *authority       // the lab's throw-away CA (kamailio's and the TURN relay's TLS)
}

// nsRoot is where `ip netns` keeps its named namespaces.
const nsRoot = "/run/netns"

// nsPrefix starts the name of every namespace the testbed makes; the process
// ID that follows lets a later run remove what a killed run left behind.
const nsPrefix = "snl"

var (
	labSeq    atomic.Int64
	sweepOnce sync.Once
)

// LabRequired reports whether SIPNAT_LAB=require is set: testbed tests must
// then run and fail instead of skipping.
func LabRequired() bool { return os.Getenv("SIPNAT_LAB") == "require" }

// skipOrFail skips the test, or fails it when SIPNAT_LAB=require.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if LabRequired() {
		t.Fatalf("netlab: %s (SIPNAT_LAB=require)", msg)
	}
	t.Skipf("netlab: %s; set SIPNAT_LAB=require to make this a failure", msg)
}

// RequireTools skips the test (or fails it with SIPNAT_LAB=require) unless
// it runs as root and every named program is on PATH.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "testbed needs root")
	}
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		skipOrFail(t, "testbed needs %s (Debian packages, see .ci/run)", strings.Join(missing, ", "))
	}
}

func (c Config) tools() []string {
	tools := []string{"ip", "nft"}
	if c.Stund || c.UPnP {
		tools = append(tools, "stund")
	}
	if c.Coturn || c.TURN != nil {
		tools = append(tools, "turnserver")
	}
	if c.UPnP {
		tools = append(tools, "miniupnpd")
	}
	if c.Kamailio {
		tools = append(tools, "kamailio", "kamcmd")
	}
	if c.IPv6 == IPv6NAT64 {
		tools = append(tools, "tayga", "unbound")
	}
	return tools
}

func (c Config) validate() error {
	switch {
	case c.Kind == None && c.CGNAT:
		return errors.New("kind none (public client) cannot be combined with CGNAT")
	case c.Kind == None && c.UPnP:
		return errors.New("kind none has no NAT to map ports on")
	case c.Kind == None && c.Hairpin:
		return errors.New("kind none has no NAT to hairpin")
	case c.Timeout < 0 || c.Timeout%time.Second != 0:
		return fmt.Errorf("timeout %v must be whole seconds", c.Timeout)
	case c.LossPercent < 0 || c.LossPercent > 100:
		return fmt.Errorf("loss %d%% out of range", c.LossPercent)
	case c.IPv6 != IPv6Off && c.CGNAT:
		return errors.New("IPv6 is not built with CGNAT")
	case c.IPv6 == IPv6NAT64 && (c.Kind == None || c.Kind == Blocked):
		return fmt.Errorf("NAT64 needs an IPv4 NAT kind behind tayga, not %q", c.Kind)
	case c.UPnP && c.IPv6 != IPv6Off && c.IPv6 != IPv6Firewall:
		return fmt.Errorf("miniupnpd is built with IPv6 only in the firewall mode, not %q", c.IPv6)
	}
	switch c.IPv6 {
	case IPv6Off, IPv6Firewall, IPv6NPT, IPv6NAT66, IPv6NAT64:
	default:
		return fmt.Errorf("unknown IPv6 mode %q", c.IPv6)
	}
	if c.TURN != nil {
		if err := c.TURN.validate(); err != nil {
			return err
		}
	}
	known := false
	for _, k := range Kinds {
		known = known || k == c.Kind
	}
	if !known {
		return fmt.Errorf("unknown kind %q", c.Kind)
	}
	if c.CGNAT {
		switch c.CGNKind {
		case EIMEIF, EIMADF, EIMAPDF, ADMAPDF, APDM:
		default:
			return fmt.Errorf("unknown CGN kind %q", c.CGNKind)
		}
	}
	return nil
}

// New builds a lab as cfg says and registers its teardown with t.Cleanup.
// Without root or the Debian tools the lab needs, the test is skipped (or
// fails under SIPNAT_LAB=require). Every lab has its own namespaces, so
// parallel tests may each build one.
func New(t testing.TB, cfg Config) *Lab {
	t.Helper()
	cfg = cfg.normalized()
	if err := cfg.validate(); err != nil {
		t.Fatalf("netlab: %v", err)
	}
	RequireTools(t, cfg.tools()...)
	sweepOnce.Do(sweepStale)

	dir, err := os.MkdirTemp("", "snl")
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	l := &Lab{
		t:     t,
		cfg:   cfg,
		id:    fmt.Sprintf("%s%dx%d", nsPrefix, os.Getpid(), labSeq.Add(1)),
		dir:   dir,
		truth: truthOf(cfg),
		svc:   map[string]*Proc{},
	}
	t.Cleanup(l.teardown)
	start := time.Now()
	if err := l.build(); err != nil {
		t.Fatalf("netlab: build %s: %v (logs in %s)", cfg.Kind, err, l.dir)
	}
	t.Logf("netlab: %s up in %v: %s", l.id, time.Since(start).Round(time.Millisecond), l.truth)
	return l
}

// Truth returns what the lab was built to be.
func (l *Lab) Truth() Truth { return l.truth }

// Config returns the (normalised) configuration the lab was built from.
func (l *Lab) Config() Config { return l.cfg }

// Dir is the lab's private directory: logs, generated configs, rulesets.
func (l *Lab) Dir() string { return l.dir }

// Namespace returns the name of node's network namespace (for `ip netns exec`).
func (l *Lab) Namespace(node Node) string { return l.nsName(node) }

func (l *Lab) nsName(node Node) string { return l.id + "-" + string(node) }
func (l *Lab) nsPath(node Node) string { return filepath.Join(nsRoot, l.nsName(node)) }

func (l *Lab) nodes() []Node {
	if l.cfg.CGNAT {
		return []Node{LAN, RTR, CGN, WAN}
	}
	return []Node{LAN, RTR, WAN}
}

// teardown stops every process, kills whatever else lives in the lab's
// namespaces, deletes them and removes the directory. It runs from
// t.Cleanup, so also after a failure or a panic in the test.
func (l *Lab) teardown() {
	l.mu.Lock()
	procs := append([]*Proc(nil), l.procs...)
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop(2 * time.Second) }()
	}
	wg.Wait()
	for _, node := range []Node{LAN, RTR, CGN, WAN} {
		ns := l.nsName(node)
		if _, err := os.Stat(filepath.Join(nsRoot, ns)); err != nil {
			continue
		}
		killNamespacePids(ns)
		if err := run(exec.Command("ip", "netns", "del", ns)); err != nil {
			l.t.Errorf("netlab: teardown: %v", err)
		}
	}
	if l.t.Failed() {
		l.t.Logf("netlab: %s failed; its logs:\n%s", l.id, l.logs())
	}
	os.RemoveAll(l.dir)
}

// logs returns the tails of every log file of the lab, for a failing test.
func (l *Lab) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(l.dir, "*.log"))
	more, _ := filepath.Glob(filepath.Join(l.dir, "*", "*.log"))
	for _, f := range append(files, more...) {
		data, _ := os.ReadFile(f)
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(f), data)
	}
	return b.String()
}

// killNamespacePids kills every process whose network namespace is ns.
func killNamespacePids(ns string) {
	for round := 0; round < 20; round++ {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 || len(pids) == 1 && pids[0] == strconv.Itoa(os.Getpid()) {
			return
		}
		self := os.Getpid()
		for _, s := range pids {
			if pid, err := strconv.Atoi(s); err == nil && pid != self {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond) // reaping by init is not observable otherwise
	}
}

// sweepStale removes namespaces that an earlier, killed test process left
// behind: their names carry the PID of a process that no longer exists.
func sweepStale() {
	entries, _ := os.ReadDir(nsRoot)
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, nsPrefix) {
			continue
		}
		rest := strings.TrimPrefix(name, nsPrefix)
		x := strings.IndexByte(rest, 'x')
		if x <= 0 {
			continue
		}
		pid, err := strconv.Atoi(rest[:x])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // its owner still runs
		}
		killNamespacePids(name)
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
}
