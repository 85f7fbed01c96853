package nat_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/nat"
)

var (
	fakeServer = netip.MustParseAddrPort("198.51.100.7:3478")
	fakeMapped = netip.MustParseAddrPort("203.0.113.9:40000")
	fakeOther  = netip.MustParseAddrPort("198.51.100.8:3478")
)

// waitWrites waits until f has seen n writes, failing after 5 s.
func waitWrites(t *testing.T, f *fakeConn, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for f.sends() < n {
		select {
		case <-f.wrote:
		case <-deadline:
			t.Fatalf("waited for %d writes, saw %d", n, f.sends())
		}
	}
}

// TestTransactionFakes runs transactions against fake servers that lose,
// duplicate, reorder, delay and corrupt answers, on a fake clock.
func TestTransactionFakes(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration // advance the clock after the writes so far
		writes  int           // wait for this many writes first
	}
	tests := []struct {
		name   string
		serve  func(clk *clock.Fake, n int, req []byte, reply func([]byte, netip.AddrPort))
		steps  []step
		writes int // total requests sent
		err    error
		legacy bool
	}{
		{
			name: "answer at once",
			serve: func(_ *clock.Fake, _ int, req []byte, reply func([]byte, netip.AddrPort)) {
				reply(answer(req, fakeMapped, false, 0), fakeServer)
			},
			writes: 1,
		},
		{
			name: "first three lost",
			serve: func(_ *clock.Fake, n int, req []byte, reply func([]byte, netip.AddrPort)) {
				if n >= 3 {
					reply(answer(req, fakeMapped, false, 0), fakeServer)
				}
			},
			// RTO 500 ms doubling: sends at 0, 0.5, 1.5, 3.5 s.
			steps:  []step{{500 * time.Millisecond, 1}, {time.Second, 2}, {2 * time.Second, 3}},
			writes: 4,
		},
		{
			name: "every answer duplicated",
			serve: func(_ *clock.Fake, _ int, req []byte, reply func([]byte, netip.AddrPort)) {
				b := answer(req, fakeMapped, false, 0)
				reply(b, fakeServer)
				reply(b, fakeServer)
			},
			writes: 1,
		},
		{
			name: "late answer to the first request after a retransmission",
			serve: func(clk *clock.Fake, n int, req []byte, reply func([]byte, netip.AddrPort)) {
				if n == 0 {
					b := answer(req, fakeMapped, false, 0)
					clk.AfterFunc(700*time.Millisecond, func() { reply(b, fakeServer) })
				}
			},
			steps:  []step{{500 * time.Millisecond, 1}, {200 * time.Millisecond, 2}},
			writes: 2,
		},
		{
			name: "reordered: stale answer of another transaction first",
			serve: func(_ *clock.Fake, _ int, req []byte, reply func([]byte, netip.AddrPort)) {
				other := append([]byte(nil), req...)
				other[19] ^= 0xff // a transaction ID nobody waits for
				reply(answer(other, netip.MustParseAddrPort("192.0.2.1:1"), false, 0), fakeServer)
				reply(answer(req, fakeMapped, false, 0), fakeServer)
			},
			writes: 1,
		},
		{
			name: "answer from unexpected source dropped",
			serve: func(_ *clock.Fake, n int, req []byte, reply func([]byte, netip.AddrPort)) {
				reply(answer(req, netip.MustParseAddrPort("192.0.2.1:1"), false, 0), fakeOther)
				if n == 1 {
					reply(answer(req, fakeMapped, false, 0), fakeServer)
				}
			},
			steps:  []step{{500 * time.Millisecond, 1}},
			writes: 2,
		},
		{
			name: "corrupt fingerprint then good answer",
			serve: func(_ *clock.Fake, n int, req []byte, reply func([]byte, netip.AddrPort)) {
				b := answer(req, fakeMapped, false, 0)
				if n == 0 {
					b[len(b)-1] ^= 1
				}
				reply(b, fakeServer)
			},
			steps:  []step{{500 * time.Millisecond, 1}},
			writes: 2,
		},
		{
			name:   "RFC 3489 MAPPED-ADDRESS",
			legacy: true,
			serve: func(_ *clock.Fake, _ int, req []byte, reply func([]byte, netip.AddrPort)) {
				reply(answer(req, fakeMapped, true, 0), fakeServer)
			},
			writes: 1,
		},
		{
			name: "all lost",
			serve: func(*clock.Fake, int, []byte, func([]byte, netip.AddrPort)) {
			},
			// sends at 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5; fails at 39.5 s.
			steps: []step{
				{500 * time.Millisecond, 1}, {time.Second, 2}, {2 * time.Second, 3}, {4 * time.Second, 4},
				{8 * time.Second, 5}, {16 * time.Second, 6}, {8*time.Second - time.Millisecond, 7}, {time.Millisecond, 7},
			},
			writes: 7,
			err:    nat.ErrNoResponse,
		},
		{
			name: "only malformed answers",
			serve: func(_ *clock.Fake, _ int, req []byte, reply func([]byte, netip.AddrPort)) {
				b := answer(req, fakeMapped, false, 0)
				b[len(b)-1] ^= 1
				reply(b, fakeServer)
			},
			steps: []step{
				{500 * time.Millisecond, 1}, {time.Second, 2}, {2 * time.Second, 3}, {4 * time.Second, 4},
				{8 * time.Second, 5}, {16 * time.Second, 6}, {8 * time.Second, 7},
			},
			writes: 7,
			err:    nat.ErrMalformed,
		},
		{
			name: "error response",
			serve: func(_ *clock.Fake, _ int, req []byte, reply func([]byte, netip.AddrPort)) {
				reply(answer(req, fakeMapped, false, 400), fakeServer)
			},
			writes: 1,
			err:    &nat.ServerError{Code: 400, Reason: "no"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(time.Unix(1000, 0))
			f := newFakeConn("192.168.1.10:5060")
			c := nat.NewClient(f, nat.ClientConfig{CallerReads: true, Clock: clk})
			f.deliver = c.HandlePacket
			f.serve = func(n int, req []byte, reply func([]byte, netip.AddrPort)) { tt.serve(clk, n, req, reply) }
			type result struct {
				r   nat.Response
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := c.BindingWith(context.Background(), fakeServer, nat.BindingOptions{})
				done <- result{r, err}
			}()
			for _, s := range tt.steps {
				waitWrites(t, f, s.writes)
				clk.Advance(s.advance)
			}
			res := <-done
			require.Equal(t, tt.writes, f.sends(), "requests sent")
			switch want := tt.err.(type) {
			case nil:
				require.NoError(t, res.err)
				require.Equal(t, fakeMapped, res.r.Mapped)
				require.Equal(t, !tt.legacy, res.r.XOR)
				require.Equal(t, fakeServer, res.r.From)
			case *nat.ServerError:
				var se *nat.ServerError
				require.ErrorAs(t, res.err, &se)
				require.Equal(t, want, se)
			default:
				require.ErrorIs(t, res.err, want)
			}
			require.Zero(t, clk.Pending(), "timers left")
			for _, b := range f.sent {
				require.True(t, nat.IsSTUN(b))
			}
			// A late duplicate after the end is consumed and harmless.
			require.True(t, c.HandlePacket(answer(f.sent[0], fakeMapped, false, 0), fakeServer))
			require.NoError(t, c.Close())
		})
	}
}

func TestTransactionContextCancel(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1000, 0))
	f := newFakeConn("192.168.1.10:5060")
	c := nat.NewClient(f, nat.ClientConfig{CallerReads: true, Clock: clk})
	f.deliver = c.HandlePacket
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Binding(ctx, fakeServer); done <- err }()
	waitWrites(t, f, 1)
	cancel()
	err := <-done
	require.ErrorIs(t, err, nat.ErrNoResponse)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, clk.Pending())
}

func TestTransactionClose(t *testing.T) {
	t.Parallel()
	f := newFakeConn("192.168.1.10:5060")
	c := nat.NewClient(f, nat.ClientConfig{CallerReads: true, Clock: clock.NewFake(time.Unix(0, 0))})
	f.deliver = c.HandlePacket
	done := make(chan error, 1)
	go func() { _, err := c.Binding(context.Background(), fakeServer); done <- err }()
	waitWrites(t, f, 1)
	require.NoError(t, c.Close())
	require.ErrorIs(t, <-done, nat.ErrClosed)
	_, err := c.Binding(context.Background(), fakeServer)
	require.ErrorIs(t, err, nat.ErrClosed)
}

// TestTransactionsInFlight runs many transactions at once; the fake server
// holds the answers and releases them in reverse order, each naming a
// different mapped port, so a mix-up would show.
func TestTransactionsInFlight(t *testing.T) {
	t.Parallel()
	const n = 100
	f := newFakeConn("192.168.1.10:5060")
	c := nat.NewClient(f, nat.ClientConfig{CallerReads: true, Clock: clock.NewFake(time.Unix(0, 0))})
	f.deliver = c.HandlePacket
	f.serve = func(int, []byte, func([]byte, netip.AddrPort)) {} // hold every answer
	// Each request asks for its own port with RESPONSE-PORT; the fake
	// server echoes it as the mapped port.
	errs := make(chan error, n)
	for i := range n {
		go func() {
			port := uint16(10000 + i)
			r, err := c.BindingWith(context.Background(), fakeServer, nat.BindingOptions{ResponsePort: port})
			if err == nil && r.Mapped.Port() != port {
				err = fmt.Errorf("request %d got port %d", i, r.Mapped.Port())
			}
			errs <- err
		}()
	}
	waitWrites(t, f, n)
	f.mu.Lock()
	reqs := f.sent // every request, recorded before its write returned
	f.mu.Unlock()
	for i := len(reqs) - 1; i >= 0; i-- {
		m := &stun.Message{Raw: reqs[i]}
		require.NoError(t, m.Decode())
		v, err := m.Get(stun.AttrResponsePort)
		require.NoError(t, err)
		port := uint16(v[0])<<8 | uint16(v[1])
		require.True(t, c.HandlePacket(answer(reqs[i], netip.AddrPortFrom(fakeMapped.Addr(), port), false, 0), fakeServer))
	}
	for range n {
		require.NoError(t, <-errs)
	}
	require.NoError(t, c.Close())
}

func TestHandlePacketNotOurs(t *testing.T) {
	t.Parallel()
	c := nat.NewClient(newFakeConn("192.168.1.10:5060"), nat.ClientConfig{CallerReads: true})
	defer c.Close()
	require.False(t, c.HandlePacket([]byte("OPTIONS sip:a@b SIP/2.0\r\n\r\n"), fakeServer))
	require.False(t, c.HandlePacket([]byte("\r\n\r\n"), fakeServer))
	// A STUN request from a peer (ICE check) belongs to the caller.
	var req [20]byte
	req[1] = 1
	copy(req[4:8], []byte{0x21, 0x12, 0xA4, 0x42})
	require.True(t, nat.IsSTUN(req[:]))
	require.False(t, c.HandlePacket(req[:], fakeServer))
	// A stray response is STUN and consumed.
	require.True(t, c.HandlePacket(answer(req[:], fakeMapped, false, 0), fakeServer))
	require.False(t, errors.Is(nil, nat.ErrNotSTUN))
}
