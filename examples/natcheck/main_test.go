package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/cmdline/cmdlinetest"
	"github.com/sipnat/sipnat/nat"
	"github.com/stretchr/testify/require"
)

func TestRunOffline(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), nil, &out, &errOut))
	s := out.String()
	require.True(t, strings.HasPrefix(s, "SELF-TEST:"), s)
	for _, want := range []string{"public address:", "mapping:           none", "open internet", "natcheck:          sipnat",
		"not tested:        SIP verdict: the self-test", "not tested:        port mapping"} {
		require.Contains(t, s, want)
	}
	require.NotContains(t, s, "is public", "the self-test must not call loopback public")
}

func startServer(t *testing.T, network string, ip net.IP) *nat.Server {
	pc, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	t.Cleanup(func() { pc.Close() })
	srv, err := nat.NewServer(nat.ServerConfig{Primary: pc})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(context.Background()) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return srv
}

func TestRunJSONSeveralServers(t *testing.T) {
	t.Parallel()
	a, b := startServer(t, "udp4", net.IPv4(127, 0, 0, 1)), startServer(t, "udp4", net.IPv4(127, 0, 0, 1))
	dead, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer dead.Close()
	deadAddr := dead.LocalAddr().(*net.UDPAddr).AddrPort().String()
	var out, errOut bytes.Buffer
	args := []string{"-json", "-timeout", "3s", "-portmap=false", "-local", "127.0.0.1:0",
		"-server", a.Addrs()[0].String(), "-server", b.Addrs()[0].String() + "," + deadAddr}
	require.NoError(t, run(context.Background(), args, &out, &errOut), errOut.String())
	var rep Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	require.False(t, rep.SelfTest)
	require.Len(t, rep.Servers, 3)
	require.Equal(t, a.Addrs()[0], rep.Servers[0].Addr)
	require.True(t, rep.Servers[0].Public.Addr().IsLoopback())
	require.Greater(t, rep.Servers[0].RTTMS, 0.0)
	require.Contains(t, rep.Servers[2].Error, "no answer")
	require.Contains(t, strings.Join(rep.Errors, "\n"), "server "+deadAddr+": no answer")
	require.Equal(t, "works", rep.UDP)
	require.NotNil(t, rep.NAT)
	require.Equal(t, nat.MethodTwoServer, rep.NAT.Method)
	require.Contains(t, out.String(), `"duration_ms"`)
	require.NotContains(t, out.String(), "000000000", "no nanoseconds in JSON")
}

func TestRunNoServerAnswers(t *testing.T) {
	t.Parallel()
	dead, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer dead.Close()
	addr := dead.LocalAddr().(*net.UDPAddr).AddrPort().String()
	var out, errOut bytes.Buffer
	start := time.Now()
	err = run(context.Background(), []string{"-timeout", "300ms", "-portmap=false", "-local", "127.0.0.1:0", "-server", addr}, &out, &errOut)
	require.ErrorIs(t, err, nat.ErrNoResponse)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Contains(t, out.String(), "blocked")
	require.Contains(t, out.String(), "server "+addr+": no answer", "the error names the server")
	require.NotContains(t, out.String(), "invalid AddrPort")
	require.NotContains(t, out.String(), "mapping:", "nothing reported that was not tested")
}

// TestRunIPv6Server: an IPv6 server alone is the main test.
func TestRunIPv6Server(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "udp6", net.IPv6loopback)
	var out, errOut bytes.Buffer
	args := []string{"-json", "-timeout", "5s", "-portmap=false", "-server", srv.Addrs()[0].String()}
	require.NoError(t, run(context.Background(), args, &out, &errOut), "%s", errOut.String())
	var rep Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	require.Equal(t, "::1", rep.NAT.Public.Addr().String())
	require.NotNil(t, rep.IPv6)
	require.Equal(t, "::1", rep.IPv6.Public.Addr().String())
}

// TestCommandLine: -h explains and exits 0; a bad flag, an extra argument
// or a bad setting exits 2 with one message naming it.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	cmdlinetest.RunTable(t, "natcheck", run, []cmdlinetest.Case{
		{Args: []string{"-h"}, Status: 0, Says: "natcheck tells what NAT"},
		{Args: []string{"-bogus"}, Status: 2, Says: "flag provided but not defined: -bogus"},
		{Args: []string{"extra"}, Status: 2, Says: `natcheck: unexpected argument "extra"`},
		{Args: []string{"-server", "nonsense"}, Status: 2, Says: `natcheck: -server "nonsense"`},
		{Args: []string{"-server", "127.0.0.1:0"}, Status: 2, Says: "port 0"},
		{Args: []string{"-local", "x"}, Status: 2, Says: `natcheck: -local "x"`},
	})
}
