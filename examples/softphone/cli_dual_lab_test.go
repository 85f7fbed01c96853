package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/internal/netlab"
)

// TestCommandLineDual runs the built softphone with -dual inside the
// dual-stack lab (eim-apdf and the router's IPv6 firewall): an IPv6
// -registrar, the IPv4 registrar after -dual, and -stun naming coturn on
// both families (each agent takes its family's). It registers over IPv6, an IPv6 peer
// (sipp through kamailio over IPv6) calls it and both hear the other, and
// after SIGINT -json carries the dual plan (both families' plans, the
// registration's family) and the call's media family.
func TestCommandLineDual(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver")
	bin := buildCommand(t)
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: netlab.IPv6Firewall, KamailioAuth: true, Coturn: true})
	var stdout, stderr netlab.Output // written by exec's copying goroutines while the test reads
	cmd := lab.Command(netlab.LAN, bin, "-json", "-user", "alice", "-password", netlab.KamailioPassword, "-lifetime-max", "0",
		"-registrar", netip.AddrPortFrom(netlab.Server1V6, netlab.KamailioPort).String(),
		"-stun", netip.AddrPortFrom(netlab.Server1V6, netlab.CoturnPort).String()+","+netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort).String(),
		"-dual", netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort).String())
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	contact := "sip:alice@" + netip.AddrPortFrom(netlab.Client6, 5062).String()
	deadline := time.Now().Add(45 * time.Second)
	for {
		dump, err := lab.KamailioRPC("ul.dump")
		if err == nil && strings.Contains(dump, "Address: "+contact) {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("softphone stopped before registering: %v\n%s", err, stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "not registered over IPv6 after 45 s: %s\n%s", dump, stderr.String())
	}

	rtpOut, err := lab.SippCall("alice", netlab.Peer6, netlab.Server1V6)
	require.NoError(t, err)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case <-exited:
		exited <- nil
	case <-time.After(10 * time.Second):
		t.Fatalf("softphone did not end 10 s after SIGINT\n%s", stderr.String())
	}

	type plan struct { // what the test reads of an agent.Plan
		Media []struct {
			Public netip.AddrPort `json:"public"`
		} `json:"media"`
	}
	var out struct {
		Plan *plan `json:"plan"`
		Dual *struct {
			IPv4     *plan              `json:"ipv4"`
			IPv6     *plan              `json:"ipv6"`
			Register agent.FamilyChoice `json:"register"`
		} `json:"dual"`
		Stats Stats `json:"stats"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &out), "%s\n%s", stdout.String(), stderr.String())
	require.NotNil(t, out.Dual, "-json has the dual plan: %s", stdout.String())
	require.Equal(t, agent.IPv6, out.Dual.Register.Family, "%s", stdout.String())
	require.True(t, out.Dual.Register.IPv4.Usable && out.Dual.Register.IPv6.Usable, "both paths work: %s", stdout.String())
	require.NotNil(t, out.Dual.IPv4, "%s", stdout.String())
	require.NotNil(t, out.Dual.IPv6, "%s", stdout.String())
	require.Equal(t, netlab.Public, out.Dual.IPv4.Media[0].Public.Addr(), "the IPv4 media address is the NAT's: %s", stdout.String())
	require.Equal(t, netlab.Client6, out.Dual.IPv6.Media[0].Public.Addr(), "IPv6 media needs no rewriting: %s", stdout.String())
	require.Equal(t, out.Dual.IPv6.Media, out.Plan.Media, "the plan is the registration's family's")
	require.Equal(t, []string{string(agent.IPv6)}, out.Stats.Families, "%+v", out.Stats)
	t.Logf("-dual: registered over %s; call from %s: RTP in %d, out %d", out.Dual.Register.Family, netlab.Peer6, out.Stats.RTPIn, rtpOut)
	require.True(t, out.Stats.RTPIn >= 50 && rtpOut >= 50, "two-way audio: RTP in %d, out %d", out.Stats.RTPIn, rtpOut)
}

// buildCommand builds this package's program into a temporary directory
// and returns its path (go test puts its own go first in PATH).
func buildCommand(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "softphone")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}
