package rtpengine

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
)

// fakeNG is an in-process ng server on loopback. answer builds the reply
// body for a request body; nil drops the request (no answer).
type fakeNG struct {
	conn     *net.UDPConn
	addr     netip.AddrPort
	received atomic.Int64
	answer   atomic.Pointer[func(cmd string, req Value) []byte]
	done     chan struct{}
}

func newFakeNG(t *testing.T, answer func(cmd string, req Value) []byte) *fakeNG {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	s := &fakeNG{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort(), done: make(chan struct{})}
	s.answer.Store(&answer)
	go s.serve()
	t.Cleanup(func() { c.Close(); <-s.done })
	return s
}

func (s *fakeNG) serve() {
	defer close(s.done)
	buf := make([]byte, MaxMessageSize)
	var out []byte
	var d Decoder
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		s.received.Add(1)
		sp := bytes.IndexByte(buf[:n], ' ')
		if sp < 0 {
			continue
		}
		v, err := d.Decode(buf[sp+1 : n])
		if err != nil {
			continue
		}
		body := (*s.answer.Load())(string(v.Get("command").Bytes()), v)
		if body == nil {
			continue
		}
		out = append(append(out[:0], buf[:sp+1]...), body...)
		_, _ = s.conn.WriteToUDPAddrPort(out, from)
	}
}

// echoSDP answers offers and answers with their SDP prefixed by "relayed ".
func echoSDP(cmd string, req Value) []byte {
	switch cmd {
	case "ping":
		return []byte("d6:result4:ponge")
	case "offer", "answer":
		sdp := append([]byte("relayed "), req.Get("sdp").Bytes()...)
		return append(AppendBytes([]byte("d6:result2:ok3:sdp"), sdp), 'e')
	}
	return []byte("d6:result2:oke")
}

func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// noLeak fails the test if goroutines started during it are still running
// at its end.
func noLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		require.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines leaked")
	})
}

func TestClient(t *testing.T) {
	noLeak(t)
	srv := newFakeNG(t, echoSDP)
	c := NewClient(listen(t), ClientConfig{RTO: 50 * time.Millisecond})
	defer c.Close()
	ctx := context.Background()
	require.NoError(t, c.Ping(ctx, srv.addr))
	r, err := c.Do(ctx, srv.addr, []byte("x:"), &Request{Command: Offer, CallID: []byte("c"), FromTag: []byte("f"), SDP: []byte("v=0")})
	require.NoError(t, err)
	require.Equal(t, "x:relayed v=0", string(r.SDP))

	// many requests at once, each gets its own reply
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sdp := []byte{byte('a' + i)}
			r, err := c.Do(ctx, srv.addr, nil, &Request{Command: Answer, CallID: []byte("c"), SDP: sdp})
			require.NoError(t, err)
			require.Equal(t, "relayed "+string(sdp), string(r.SDP))
		}()
	}
	wg.Wait()
}

func TestClientErrors(t *testing.T) {
	noLeak(t)
	ctx := context.Background()
	offer := &Request{Command: Offer, CallID: []byte("c"), FromTag: []byte("f"), SDP: []byte("v=0")}
	for _, tc := range []struct {
		name  string
		reply string
		is    error
		text  string
	}{
		{"malformed bencode", "d6:result2:ok3:sdp", ErrBencode, "malformed bencode at byte 18: unexpected end of input"},
		{"not a dictionary", "l2:oke", ErrMalformedReply, "a list, not a dictionary"},
		{"no sdp", "d6:result2:oke", ErrMalformedReply, "offer reply without sdp"},
		{"rejected", "d6:result5:error12:error-reason15:Unknown call-ide", ErrRejected, "offer rejected: Unknown call-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeNG(t, func(string, Value) []byte { return []byte(tc.reply) })
			c := NewClient(listen(t), ClientConfig{RTO: time.Hour}) // the reply comes at once: no retransmission
			defer c.Close()
			_, err := c.Do(ctx, srv.addr, nil, offer)
			require.ErrorIs(t, err, tc.is)
			require.ErrorContains(t, err, tc.text)
			require.ErrorContains(t, err, "rtpengine offer "+srv.addr.String())
		})
	}
}

// TestClientRetransmit: with a fake clock, an unanswered request is sent
// Tries times, RTO doubling, then fails with ErrTimeout; a reply to a
// retransmission completes the request.
func TestClientRetransmit(t *testing.T) {
	noLeak(t)
	clk := clock.NewFake(time.Unix(1000, 0))
	var drop atomic.Int64
	drop.Store(2)
	srv := newFakeNG(t, func(cmd string, v Value) []byte {
		if drop.Add(-1) >= 0 {
			return nil
		}
		return echoSDP(cmd, v)
	})
	c := NewClient(listen(t), ClientConfig{RTO: time.Second, Tries: 3, Clock: clk})
	defer c.Close()
	// fire the retransmission timer each time the server has seen one
	// more send, fires times; what the test sees does not depend on how
	// fast this machine delivers a datagram
	advance := func(fires int) (stop func()) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fired := 0; fired < fires; {
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
				if d, ok := clk.NextIn(); ok && srv.received.Load() == int64(fired+1) {
					clk.Advance(d)
					fired++
				}
			}
		}()
		return func() { close(done); wg.Wait() }
	}
	stop := advance(2)
	require.NoError(t, c.Ping(context.Background(), srv.addr), "the third send is answered")
	stop()
	require.Equal(t, int64(3), srv.received.Load())

	drop.Store(1 << 30)
	srv.received.Store(0)
	stop = advance(3)
	err := c.Ping(context.Background(), srv.addr)
	stop()
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorContains(t, err, "after 3 tries")
	require.Equal(t, int64(3), srv.received.Load())
}

func TestClientContextAndClose(t *testing.T) {
	noLeak(t)
	silent := listen(t)
	addr := silent.LocalAddr().(*net.UDPAddr).AddrPort()
	c := NewClient(listen(t), ClientConfig{RTO: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Ping(ctx, addr)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	done := make(chan error, 1)
	go func() { done <- c.Ping(context.Background(), addr) }()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pending) == 1
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, c.Close())
	require.ErrorIs(t, <-done, ErrClosed)
	require.ErrorIs(t, c.Ping(context.Background(), addr), ErrClosed)
}

// TestClientCallerReads: the caller's read loop hands packets in; replies
// from another address than the request's server are ignored.
func TestClientCallerReads(t *testing.T) {
	noLeak(t)
	conn := listen(t)
	var other []netip.AddrPort
	c := NewClient(conn, ClientConfig{CallerReads: true, RTO: 20 * time.Millisecond, Tries: 50})
	defer c.Close()
	srv := newFakeNG(t, echoSDP)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, MaxMessageSize)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if !c.HandlePacket(buf[:n], from) {
				other = append(other, from)
			}
		}
	}()
	require.NoError(t, c.Ping(context.Background(), srv.addr))
	require.False(t, c.HandlePacket([]byte("SIP/2.0 200 OK\r\n"), srv.addr))
	require.False(t, c.HandlePacket([]byte("zzzz_1 d6:result4:ponge"), srv.addr))
	require.True(t, c.HandlePacket([]byte(c.prefix+"99 d6:result4:ponge"), srv.addr), "a late reply is the client's")
	conn.Close()
	<-readerDone
	require.Empty(t, other)
}

func TestClientAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	reply := []byte("d6:result2:ok3:sdp5:v=0\r\ne")
	srv := newFakeNG(t, func(string, Value) []byte { return reply })
	c := NewClient(listen(t), ClientConfig{})
	defer c.Close()
	req := &Request{Command: Offer, CallID: []byte("call"), FromTag: []byte("tag"), SDP: []byte("v=0\r\n"),
		Source: netip.MustParseAddr("203.0.113.1"), Options: Options{SIPSource: true}}
	sdp := make([]byte, 0, 256)
	ctx := context.Background()
	_, _ = c.Do(ctx, srv.addr, sdp, req)
	n := testing.AllocsPerRun(50, func() {
		if _, err := c.Do(ctx, srv.addr, sdp[:0], req); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per offer round trip: %.1f", n)
	require.LessOrEqual(t, n, 1.0)
}
