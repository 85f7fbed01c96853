package nat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/binding"
	"github.com/sipnat/sipnat/internal/callerconn"
)

func TestDiscoverLoopbackNoNAT(t *testing.T) {
	t.Parallel()
	srv := startServer(t, true)
	conn := listenUDP(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Discover(ctx, conn, srv.Addrs()[0])
	require.NoError(t, err)
	t.Log("\n" + res.String())
	require.Equal(t, MethodRFC5780, res.Method)
	require.Equal(t, None, res.Mapping)
	require.Equal(t, None, res.Filtering)
	require.Equal(t, OpenInternet, res.Classic)
	require.Equal(t, callerconn.AddrPortOf(conn.LocalAddr()), res.Public)
	require.True(t, res.SIP.STUNContact)
	require.False(t, res.SIP.MediaRelay)
}

func TestDiscoverNoAnswer(t *testing.T) {
	t.Parallel()
	dead := listenUDP(t, "127.0.0.1:0") // never answers
	conn := listenUDP(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Discover(ctx, conn, callerconn.AddrPortOf(dead.LocalAddr()))
	require.ErrorIs(t, err, ErrNoResponse)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Equal(t, Blocked, res.Mapping)
	require.Equal(t, UDPBlocked, res.Classic)
	require.False(t, errors.Is(err, ErrMalformed))
}

// TestDiscoverTwoServers: servers without an alternate address; Discover
// compares the mapping across two of them, and skips a dead first server.
func TestDiscoverTwoServers(t *testing.T) {
	t.Parallel()
	dead := listenUDP(t, "127.0.0.1:0")
	s1, s2 := startServer(t, false), startServer(t, false)
	conn := listenUDP(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := DiscoverWith(ctx, conn, DiscoverConfig{
		Servers:      []netip.AddrPort{callerconn.AddrPortOf(dead.LocalAddr()), s1.Addrs()[0], s2.Addrs()[0]},
		RTO:          20 * time.Millisecond,
		ProbeTimeout: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	require.Equal(t, MethodTwoServer, res.Method)
	require.Equal(t, s1.Addrs()[0], res.Server)
	require.False(t, res.MappingVaries)
	require.Equal(t, None, res.Mapping)
	require.Equal(t, Unknown, res.Filtering)
}

func TestDiscoverNoServer(t *testing.T) {
	t.Parallel()
	_, err := Discover(context.Background(), listenUDP(t, "127.0.0.1:0"))
	require.ErrorIs(t, err, ErrNoServer)
}

func TestCompareGateway(t *testing.T) {
	t.Parallel()

	tests := []struct {
		gw, public string
		cgnat, dbl bool
	}{
		{"203.0.113.1", "203.0.113.1:5060", false, false},
		{"100.64.0.2", "203.0.113.1:5060", true, true},
		{"192.168.0.2", "203.0.113.1:5060", false, true},
		{"100.64.0.2", "100.64.0.2:5060", true, true}, // STUN server inside the carrier
	}
	for _, tt := range tests {
		r := &Result{Public: netip.MustParseAddrPort(tt.public), Mapping: EndpointIndependent, Filtering: AddressDependent}
		r.CompareGateway(netip.MustParseAddr(tt.gw))
		require.Equal(t, tt.cgnat, r.CGNAT, tt.gw)
		require.Equal(t, tt.dbl, r.DoubleNAT, tt.gw)
		require.Equal(t, netip.MustParseAddr(tt.gw), r.GatewayExternal)
		if tt.cgnat {
			require.Contains(t, r.SIP.Summary, "carrier-grade NAT")
		}
	}

}

func TestVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m, f       Behavior
		lifetime   time.Duration
		contact    bool
		relay      bool
		keepAlive  time.Duration
		classic    ClassicType
		summaryHas string
	}{
		{None, None, 0, true, false, 0, OpenInternet, "No NAT"},
		{None, AddressAndPortDependent, 0, true, false, binding.DefaultKeepAlive, SymmetricUDPFirewall, "firewall"},
		{EndpointIndependent, EndpointIndependent, 0, true, false, binding.DefaultKeepAlive, FullCone, "same toward every destination"},
		{EndpointIndependent, AddressAndPortDependent, 5 * time.Second, true, false, 2500 * time.Millisecond, PortRestrictedCone, "send first"},
		{AddressDependent, AddressAndPortDependent, 0, false, true, binding.DefaultKeepAlive, Symmetric, "relay"},
		{AddressAndPortDependent, AddressAndPortDependent, 0, false, true, binding.DefaultKeepAlive, Symmetric, "relay"},
		{Blocked, Blocked, 0, false, false, 0, UDPBlocked, "TCP"},
	}
	for _, tt := range tests {
		r := &Result{Mapping: tt.m, Filtering: tt.f, Lifetime: tt.lifetime}
		v := verdict(r)
		require.Equal(t, tt.contact, v.STUNContact, "%v/%v", tt.m, tt.f)
		require.Equal(t, tt.relay, v.MediaRelay, "%v/%v", tt.m, tt.f)
		require.Equal(t, tt.keepAlive, v.KeepAlive, "%v/%v", tt.m, tt.f)
		require.Contains(t, v.Summary, tt.summaryHas)
		require.Equal(t, tt.classic, classicOf(tt.m, tt.f))
		txt, err := tt.m.MarshalText()
		require.NoError(t, err)
		var back Behavior
		require.NoError(t, back.UnmarshalText(txt))
		require.Equal(t, tt.m, back)
	}
}

// deafConn is a socket that reads and drops everything: a server socket
// that never answers.
type deafConn struct{ *net.UDPConn }

func (d deafConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		if _, _, err := d.UDPConn.ReadFrom(b); err != nil {
			return 0, nil, err
		}
	}
}

func (d deafConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, a, err := d.ReadFrom(b)
	return n, callerconn.AddrPortOf(a), err
}

// TestDiscoverCutShort: a context that ends during the probes is an error.
// The server advertises an alternate address that never answers, and the
// client believes it is behind NAT, so the mapping probes wait.
func TestDiscoverCutShort(t *testing.T) {
	t.Parallel()
	p := listenUDP(t, "127.0.0.1:0")
	pp := callerconn.AddrPortOf(p.LocalAddr()).Port()
	alt := listenUDP(t, "127.0.0.1:0")
	ap := callerconn.AddrPortOf(alt.LocalAddr()).Port()
	aa, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: int(pp)})
	if err != nil {
		t.Skipf("port taken on 127.0.0.2: %v", err)
	}
	defer aa.Close()
	ab, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: int(ap)})
	if err != nil {
		t.Skipf("port taken on 127.0.0.2: %v", err)
	}
	defer ab.Close()
	srv, err := NewServer(ServerConfig{Primary: p, AltPort: alt, AltAddr: deafConn{aa}, AltBoth: deafConn{ab}})
	require.NoError(t, err)
	go func() { _ = srv.Serve(context.Background()) }()
	defer srv.Close()

	conn := listenUDP(t, "0.0.0.0:0")
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	res, err := DiscoverWith(ctx, conn, DiscoverConfig{
		Servers:      []netip.AddrPort{srv.Addrs()[0]},
		ProbeTimeout: 5 * time.Second,
		LocalAddrs:   []netip.Addr{netip.MustParseAddr("192.0.2.1")}, // so 127.0.0.1 looks like a NAT's
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotNil(t, res)
	require.Equal(t, Unknown, res.Mapping)
	require.Equal(t, uint16(callerconn.AddrPortOf(conn.LocalAddr()).Port()), res.Public.Port())
}
