package nat

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
)

// manualClock is a clock.Clock for server tests whose time the test sets.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) clock.Timer { return time.AfterFunc(d, f) }

// request encodes a Binding request like our client does.
func request(o BindingOptions) []byte {
	var m stun.Message
	buildRequest(&m, [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, o)
	return m.Raw
}

// classicRequest is an RFC 3489 Binding request: 128-bit ID, no cookie.
func classicRequest(change byte) []byte {
	b := []byte{0, 1, 0, 0, 9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if change != 0 {
		b = append(b, 0, 3, 0, 4, 0, 0, 0, change)
		b[3] = 8
	}
	return b
}

func TestServerRespond(t *testing.T) {
	t.Parallel()
	srv := startServer(t, true)
	a := srv.Addrs()
	client := netip.MustParseAddrPort("192.0.2.50:40000")
	tests := []struct {
		name     string
		req      []byte
		dst      netip.AddrPort
		sock     int
		errCode  int
		classic  bool
		maxBytes int
	}{
		{name: "plain", req: request(BindingOptions{}), dst: client, sock: 0, maxBytes: 20 + 12 + 12 + 12 + 8},
		{name: "no fingerprint", req: request(BindingOptions{NoFingerprint: true}), dst: client, sock: 0, maxBytes: 20 + 36},
		{name: "change ip", req: request(BindingOptions{ChangeIP: true}), dst: client, sock: 2},
		{name: "change port", req: request(BindingOptions{ChangePort: true}), dst: client, sock: 1},
		{name: "change both", req: request(BindingOptions{ChangeIP: true, ChangePort: true}), dst: client, sock: 3},
		{
			name: "response port goes to the source IP only", req: request(BindingOptions{ResponsePort: 5555}),
			dst: netip.AddrPortFrom(client.Addr(), 5555), sock: 0,
		},
		{name: "classic", req: classicRequest(0), dst: client, sock: 0, classic: true, maxBytes: 20 + 36},
		{name: "classic change both", req: classicRequest(6), dst: client, sock: 3, classic: true},
		{name: "padding: answer as large as the request, no larger", req: withPadding(request(BindingOptions{NoFingerprint: true}), 400), dst: client, sock: 0, maxBytes: 20 + 400 + 4},
		{name: "unknown comprehension-required attribute", req: withAttr(request(BindingOptions{NoFingerprint: true}), 0x0024), dst: client, errCode: 420},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out stun.Message
			dst, sock, ok := srv.respond(0, tt.req, client, &out)
			require.True(t, ok)
			require.Equal(t, tt.dst, dst)
			require.Equal(t, tt.sock, sock)
			if tt.maxBytes > 0 {
				require.LessOrEqual(t, len(out.Raw), tt.maxBytes, "response larger than needed")
				require.LessOrEqual(t, len(out.Raw), max(len(tt.req), 20+3*12+8), "response larger than the request")
			}
			require.Equal(t, tt.req[4:20], out.Raw[4:20], "transaction ID echoed")
			m := &stun.Message{Raw: append([]byte(nil), out.Raw...)}
			if tt.classic {
				copy(m.Raw[4:8], []byte{0x21, 0x12, 0xA4, 0x42}) // let pion decode it
			}
			require.NoError(t, m.Decode())
			if tt.errCode != 0 {
				require.Equal(t, stun.BindingError, m.Type)
				var ec stun.ErrorCodeAttribute
				require.NoError(t, ec.GetFrom(m))
				require.Equal(t, stun.ErrorCode(tt.errCode), ec.Code)
				return
			}
			r, err := parseResponse(m)
			require.NoError(t, err)
			require.Equal(t, client, r.Mapped)
			require.Equal(t, !tt.classic, r.XOR)
			require.Equal(t, a[tt.sock], r.Origin)
			require.Equal(t, a[3], r.Other)
			require.Equal(t, tt.classic, r.Legacy)
		})
	}
}

// withPadding appends a PADDING attribute of n bytes.
func withPadding(b []byte, n int) []byte {
	b = append(b, 0, 0x26, byte(n>>8), byte(n))
	b = append(b, make([]byte, n)...)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-20))
	return b
}

// withAttr appends an attribute of type t with a 4-byte value.
func withAttr(b []byte, t uint16) []byte {
	b = append(b, byte(t>>8), byte(t), 0, 4, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-20))
	return b
}

func TestServerDropsAndCounts(t *testing.T) {
	t.Parallel()
	srv := startServer(t, false)
	from := netip.MustParseAddrPort("192.0.2.50:40000")
	var out stun.Message
	badFP := request(BindingOptions{})
	badFP[len(badFP)-1] ^= 1
	indication := request(BindingOptions{NoFingerprint: true})
	indication[1] = 0x11
	for _, b := range [][]byte{
		nil, []byte("INVITE sip:x SIP/2.0\r\n"), make([]byte, 19), badFP,
		request(BindingOptions{})[:30], // truncated
		withAttr(request(BindingOptions{NoFingerprint: true}), 0x0003)[:26],
	} {
		_, _, ok := srv.respond(0, b, from, &out)
		require.False(t, ok)
	}
	_, _, ok := srv.respond(0, indication, from, &out)
	require.False(t, ok)
	// CHANGE-REQUEST without the alternate sockets: 420 from where it came.
	dst, sock, ok := srv.respond(0, request(BindingOptions{ChangeIP: true}), from, &out)
	require.True(t, ok)
	require.Equal(t, from, dst)
	require.Equal(t, 0, sock)
	st := srv.Stats()
	require.Equal(t, ServerStats{Malformed: 6, Ignored: 1, Errors: 1}, st)
}

func TestServerRateLimit(t *testing.T) {
	t.Parallel()
	clk := &manualClock{now: time.Unix(1000, 0)}
	s, err := NewServer(ServerConfig{Primary: listenUDP(t, "127.0.0.1:0"), Rate: 10, Burst: 5, MaxSources: 2, Clock: clk})
	require.NoError(t, err)
	var out stun.Message
	req := request(BindingOptions{})
	a := netip.MustParseAddrPort("192.0.2.1:1000")
	allowed := 0
	for range 20 {
		if _, _, ok := s.respond(0, req, a, &out); ok {
			allowed++
		}
	}
	require.Equal(t, 5, allowed, "burst")
	clk.add(200 * time.Millisecond) // 2 tokens back
	allowed = 0
	for range 5 {
		if _, _, ok := s.respond(0, req, a, &out); ok {
			allowed++
		}
	}
	require.Equal(t, 2, allowed, "refill")
	// Another source has its own bucket; the table holds MaxSources.
	_, _, ok := s.respond(0, req, netip.MustParseAddrPort("192.0.2.2:1000"), &out)
	require.True(t, ok)
	_, _, ok = s.respond(0, req, netip.MustParseAddrPort("192.0.2.3:1000"), &out)
	require.False(t, ok, "table full of active sources")
	clk.add(time.Minute) // everyone idle: swept
	_, _, ok = s.respond(0, req, netip.MustParseAddrPort("192.0.2.3:1000"), &out)
	require.True(t, ok)
	require.Equal(t, uint64(15+3+1), s.Stats().RateLimited)
}

func TestNewServerChecks(t *testing.T) {
	t.Parallel()
	_, err := NewServer(ServerConfig{})
	require.Error(t, err)
	_, err = NewServer(ServerConfig{Primary: listenUDP(t, "0.0.0.0:0")})
	require.Error(t, err, "unspecified address")
	p := listenUDP(t, "127.0.0.1:0")
	_, err = NewServer(ServerConfig{Primary: p, AltAddr: listenUDP(t, "127.0.0.1:0")})
	require.Error(t, err, "alternate address equals primary")
}

// TestServerClientCallerReads shares one socket between a "SIP" read loop
// owned by the test and the STUN client (CallerReads), against the server.
func TestServerClientCallerReads(t *testing.T) {
	t.Parallel()
	srv := startServer(t, true)
	conn := listenUDP(t, "127.0.0.1:0")
	c := NewClient(conn, ClientConfig{CallerReads: true})
	defer c.Close()
	sip := make(chan string, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if !c.HandlePacket(buf[:n], from) {
				sip <- string(buf[:n])
			}
		}
	}()
	peer := listenUDP(t, "127.0.0.1:0")
	_, err := peer.WriteToUDPAddrPort([]byte("OPTIONS sip:a@b SIP/2.0\r\n\r\n"), callerconn.AddrPortOf(conn.LocalAddr()))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Discover(ctx, DiscoverConfig{Servers: []netip.AddrPort{srv.Addrs()[0]}})
	require.NoError(t, err)
	require.Equal(t, OpenInternet, res.Classic)
	require.Equal(t, "OPTIONS sip:a@b SIP/2.0\r\n\r\n", <-sip)
}

func TestServerServeContext(t *testing.T) {
	t.Parallel()
	pc := listenUDP(t, "127.0.0.1:0")
	s, err := NewServer(ServerConfig{Primary: pc})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	c := NewClient(listenUDP(t, "127.0.0.1:0"), ClientConfig{})
	defer c.Close()
	_, err = c.Binding(ctx, s.Addrs()[0])
	require.NoError(t, err)
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, s.Close())
	// The socket is still open and has no deadline left.
	require.NoError(t, pc.SetReadDeadline(time.Time{}))
	_, err = pc.WriteToUDPAddrPort([]byte("x"), callerconn.AddrPortOf(pc.LocalAddr()))
	require.NoError(t, err)
}

// TestServerForeignDeadline: a read deadline someone else sets on a server
// socket neither stops the server nor makes it spin.
func TestServerForeignDeadline(t *testing.T) {
	t.Parallel()
	srv := startServer(t, false)
	require.NoError(t, srv.cfg.Primary.SetReadDeadline(time.Unix(1, 0)))
	c := NewClient(listenUDP(t, "127.0.0.1:0"), ClientConfig{RTO: 50 * time.Millisecond})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Binding(ctx, srv.Addrs()[0])
	require.NoError(t, err)
}
