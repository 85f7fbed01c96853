package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/sipnat/sipnat/nat"
	"github.com/stretchr/testify/require"
)

func TestRunOffline(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), nil, &out, &errOut))
	s := out.String()
	for _, want := range []string{"public address:", "mapping:           none", "open internet", "hairpin:", "binding lifetime:", "CGNAT:", "No NAT"} {
		require.Contains(t, s, want)
	}
}

func TestRunJSONWithServer(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer pc.Close()
	srv, err := nat.NewServer(nat.ServerConfig{Primary: pc})
	require.NoError(t, err)
	go func() { _ = srv.Serve(context.Background()) }()
	defer srv.Close()

	var out, errOut bytes.Buffer
	args := []string{"-json", "-timeout", "5s", "-local", "127.0.0.1:0", "-server", srv.Addrs()[0].String()}
	require.NoError(t, run(context.Background(), args, &out, &errOut))
	var res nat.Result
	require.NoError(t, json.Unmarshal(out.Bytes(), &res))
	require.Equal(t, nat.MethodBasic, res.Method)
	require.Equal(t, srv.Addrs()[0], res.Server)
	require.True(t, res.Public.Addr().IsLoopback())
}

func TestRunNoServerAnswers(t *testing.T) {
	t.Parallel()
	dead, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer dead.Close()
	var out, errOut bytes.Buffer
	start := time.Now()
	err = run(context.Background(), []string{"-timeout", "300ms", "-local", "127.0.0.1:0", "-server",
		dead.LocalAddr().(*net.UDPAddr).AddrPort().String()}, &out, &errOut)
	require.ErrorIs(t, err, nat.ErrNoResponse)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Contains(t, out.String(), "blocked")
}

// TestRunIPv6Server: an IPv6 server gets an IPv6 socket (before, the IPv4
// socket made `-server '[::1]:3478'` report "UDP is blocked").
func TestRunIPv6Server(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer pc.Close()
	srv, err := nat.NewServer(nat.ServerConfig{Primary: pc})
	require.NoError(t, err)
	go func() { _ = srv.Serve(context.Background()) }()
	defer srv.Close()

	var out, errOut bytes.Buffer
	args := []string{"-json", "-timeout", "5s", "-server", srv.Addrs()[0].String()}
	require.NoError(t, run(context.Background(), args, &out, &errOut), "%s", errOut.String())
	var res nat.Result
	require.NoError(t, json.Unmarshal(out.Bytes(), &res))
	require.Equal(t, nat.MethodBasic, res.Method)
	require.Equal(t, "::1", res.Public.Addr().String())
}
