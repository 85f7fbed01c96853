package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/sipmsg"
	"github.com/stretchr/testify/require"
)

const testInstance = "urn:uuid:4c1f5a2e-0d7b-4b8e-9d51-6a3c2f1e0b77"

// registerFunc is what a UA passes as FlowConfig.Register: a REGISTER with the
// outbound parameters, over the flow.
func registerFunc(regID int) func(ctx context.Context, f *Flow) ([]byte, error) {
	return registerAt(regID, "example.com")
}

// registerAt registers alice@domain with reg-id regID.
func registerAt(regID int, domain string) func(ctx context.Context, f *Flow) ([]byte, error) {
	var n uint32
	var mu sync.Mutex
	return func(ctx context.Context, f *Flow) ([]byte, error) {
		mu.Lock()
		n++
		cseq := n
		mu.Unlock()
		req := sipmsg.AppendRegister(nil, sipmsg.RegisterRequest{
			Registrar: "sip:" + domain, AoR: "sip:alice@" + domain, User: "alice",
			Contact: f.Local(), Transport: f.Transport(), Branch: fmt.Sprintf("r%d-%d", regID, cseq),
			Tag: "t", CallID: fmt.Sprintf("reg%d", regID), CSeq: cseq, Expires: 300 * time.Second,
			Outbound: sipmsg.Outbound{Instance: testInstance, RegID: regID}, Alias: f.Transport() != sipmsg.UDP,
		})
		resp, err := f.Transact(ctx, req)
		if err != nil {
			return nil, err
		}
		var m sipmsg.Message
		if err := m.Parse(resp); err != nil {
			return nil, err
		}
		if m.StatusCode() != 200 {
			return nil, fmt.Errorf("registrar says %d %s", m.StatusCode(), m.Reason())
		}
		return resp, nil
	}
}

// testEdge is an Edge with a registrar behind it: REGISTER gets a 200 with
// Require: outbound and the edge's Flow-Timer; the last flow is kept.
type testEdge struct {
	*Edge
	mu    sync.Mutex
	flows []sipmsg.Flow
	other chan []byte // requests from UAs that are not REGISTER
}

func newTestEdge(t *testing.T, cfg EdgeConfig) *testEdge {
	te := &testEdge{other: make(chan []byte, 16)}
	cfg.Handle = func(_ context.Context, f sipmsg.Flow, b []byte) {
		var m sipmsg.Message
		if m.Parse(b) != nil {
			return
		}
		if !m.IsMethod("REGISTER") {
			te.other <- append([]byte(nil), b...)
			return
		}
		te.mu.Lock()
		te.flows = append(te.flows, f)
		te.mu.Unlock()
		resp, err := sipmsg.AppendResponse(nil, &m, 200, "OK", "reg", "Require: outbound\r\n")
		var r sipmsg.Message
		if err == nil && r.Parse(resp) == nil {
			resp, _, _ = te.AppendFlowTimerTo(nil, &r)
			_ = te.Send(f, resp)
		}
	}
	if !cfg.Self.IsValid() {
		cfg.Self = netip.MustParseAddrPort("127.0.0.1:5060")
	}
	e, err := NewEdge(cfg)
	require.NoError(t, err)
	te.Edge = e
	return te
}

func (te *testEdge) lastFlow() sipmsg.Flow {
	te.mu.Lock()
	defer te.mu.Unlock()
	return te.flows[len(te.flows)-1]
}

// serve runs the edge on a new loopback listener of transport tr.
func (te *testEdge) serve(t *testing.T, tr sipmsg.Transport) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- te.ServeStream(ctx, ln, tr) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		ln.Close()
	})
	return callerconn.AddrPortOf(ln.Addr())
}

// events collects a flow's events and lets a test wait for one kind.
type events struct {
	ch chan Event
}

func newEvents() *events { return &events{ch: make(chan Event, 64)} }

func (ev *events) on(e Event) { ev.ch <- e }

func (ev *events) wait(t *testing.T, k EventKind) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ev.ch:
			if e.Kind == k {
				return e
			}
		case <-deadline:
			t.Fatalf("no %v event", k)
		}
	}
}

func runFlow(t *testing.T, cfg FlowConfig) *Flow {
	f, err := NewFlow(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	return f
}

func TestFlowStream(t *testing.T) {
	t.Parallel()
	certs, err := netlab.MakeCerts(t.TempDir(), "", "edge.example", netip.MustParseAddr("127.0.0.1"))
	require.NoError(t, err)
	for _, tr := range []sipmsg.Transport{sipmsg.TCP, sipmsg.TLS} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			te := newTestEdge(t, EdgeConfig{FlowTimer: 25 * time.Second, TLS: &tls.Config{Certificates: []tls.Certificate{certs.Server}}})
			addr := te.serve(t, tr)
			ev := newEvents()
			msgs := make(chan string, 4)
			f := runFlow(t, FlowConfig{
				Transport: tr, Server: addr, ServerName: "edge.example", RootCAs: certs.Roots,
				Register: registerFunc(1), OnEvent: ev.on,
				OnMessage: func(f *Flow, b []byte) { msgs <- string(b) },
			})
			e := ev.wait(t, Registered)
			require.False(t, e.Reformed, "the first flow")
			require.True(t, e.Outbound, "Require: outbound seen")
			require.Equal(t, 25*time.Second, e.FlowTimer)
			require.Equal(t, 25*time.Second, f.KeepaliveInterval(), "keep-alives at the Flow-Timer (80-100 %% jitter on top)")
			require.True(t, f.Outbound())

			// connection reuse: the edge reaches the UA over the UA's connection
			flow := te.lastFlow()
			require.Equal(t, tr, flow.Transport)
			invite := "INVITE sip:alice@x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKi\r\nCall-ID: i\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
			require.NoError(t, te.Send(flow, []byte(invite)))
			require.Equal(t, invite, <-msgs)

			// a killed connection: detected (EOF), a new flow registered at once
			require.True(t, te.Close(flow))
			ff := ev.wait(t, FlowFailed)
			require.True(t, ff.AllFailed)
			re := ev.wait(t, Registered)
			require.True(t, re.Reformed, "dialogs of the old flow need a target refresh")
			require.NotEqual(t, e.Local, re.Local, "a new connection, a new Contact")
			require.NotEqual(t, flow, te.lastFlow(), "a new connection")
			require.ErrorIs(t, te.Send(flow, []byte(invite)), ErrFlowGone, "the old flow is gone: 430")
		})
	}
}

func TestFlowTLSBadCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, err := netlab.MakeCerts(dir, "good-", "edge.example")
	require.NoError(t, err)
	other, err := netlab.MakeCerts(dir, "other-", "edge.example")
	require.NoError(t, err)
	te := newTestEdge(t, EdgeConfig{TLS: &tls.Config{Certificates: []tls.Certificate{good.Server}}})
	addr := te.serve(t, sipmsg.TLS)
	tests := []struct {
		name       string
		serverName string
		roots      *x509.CertPool
	}{
		{"untrusted CA", "edge.example", other.Roots},
		{"wrong name", "other.example", good.Roots},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := NewFlow(FlowConfig{Transport: sipmsg.TLS, Server: addr, ServerName: tt.serverName, RootCAs: tt.roots, Register: registerFunc(1)})
			require.NoError(t, err)
			_, err = f.dial(context.Background())
			var ce *CertificateError
			require.ErrorAs(t, err, &ce)
			require.Contains(t, err.Error(), "certificate rejected")
		})
	}
}

// silentEdge answers REGISTER on TCP but never answers a ping; stop makes
// it refuse new connections.
func silentEdge(t *testing.T) (netip.AddrPort, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := sipmsg.NewStreamReader(c, sipmsg.StreamConfig{})
				for {
					kind, b, err := s.Next()
					if err != nil {
						return
					}
					var m sipmsg.Message
					if kind == sipmsg.FrameMessage && m.Parse(b) == nil {
						resp, _ := sipmsg.AppendResponse(nil, &m, 200, "OK", "x", "")
						_, _ = c.Write(resp)
					}
				}
			}()
		}
	}()
	// stop refuses new connections; open ones stay, silent, until cleanup
	stop := func() { ln.Close() }
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return callerconn.AddrPortOf(ln.Addr()), stop
}

// A flow whose pings go unanswered fails after the pong timeout; forming
// it again fails while the edge is down, and the retries follow the RFC
// 5626 backoff on the flow's clock.
func TestFlowRecoveryBackoff(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1000, 0))
	addr, stop := silentEdge(t)
	ev := newEvents()
	runFlow(t, FlowConfig{
		Transport: sipmsg.TCP, Server: addr, Register: registerFunc(1), OnEvent: ev.on,
		Timing: keepalive.Timing{Interval: 30 * time.Second, NoJitter: true}, Clock: clk, Rand: rand.NewPCG(3, 4),
	})
	ev.wait(t, Registered)
	clk.Advance(30 * time.Second) // the ping
	stop()                        // the edge goes away: no pong, no new connection
	clk.Advance(keepalive.DefaultTimeout)
	e := ev.wait(t, FlowFailed)
	require.ErrorIs(t, e.Err, ErrFlowFailed)
	var prev time.Duration
	for i := 1; i <= 4; i++ {
		r := ev.wait(t, Retrying)
		require.Equal(t, i, r.Failures)
		require.True(t, r.AllFailed)
		ceiling := keepalive.Recovery{}.Ceiling(i, true)
		require.GreaterOrEqual(t, r.Wait, ceiling/2)
		require.LessOrEqual(t, r.Wait, ceiling)
		require.NotEqual(t, prev, r.Wait)
		prev = r.Wait
		waitPending(t, clk)
		clk.Advance(r.Wait)
	}
}

// waitPending waits until the flow armed its backoff timer.
func waitPending(t *testing.T, clk *clock.Fake) {
	t.Helper()
	require.Eventually(t, func() bool { return clk.Pending() > 0 }, 5*time.Second, time.Millisecond)
}

// Two flows in a group: while one edge is down the other keeps the UA
// registered, and the failed one backs off from the 90 s base.
func TestFlowGroup(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1000, 0))
	var g Group
	te := newTestEdge(t, EdgeConfig{})
	up := te.serve(t, sipmsg.TCP)
	down, stop := silentEdge(t)
	stop()
	evUp, evDown := newEvents(), newEvents()
	runFlow(t, FlowConfig{Transport: sipmsg.TCP, Server: up, Register: registerFunc(1), OnEvent: evUp.on, Group: &g, Clock: clk})
	evUp.wait(t, Registered)
	runFlow(t, FlowConfig{Transport: sipmsg.TCP, Server: down, Register: registerFunc(2), OnEvent: evDown.on, Group: &g, Clock: clk})
	r := evDown.wait(t, Retrying)
	require.False(t, r.AllFailed)
	require.GreaterOrEqual(t, r.Wait, 90*time.Second)
	require.Equal(t, 1, g.Up())
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	srv := netip.MustParseAddrPort("127.0.0.1:5060")
	tests := []struct {
		name string
		cfg  FlowConfig
	}{
		{"no transport", FlowConfig{Server: srv, Register: registerFunc(1)}},
		{"no server", FlowConfig{Transport: sipmsg.TCP, Register: registerFunc(1)}},
		{"no register", FlowConfig{Transport: sipmsg.TCP, Server: srv}},
		{"tls without name", FlowConfig{Transport: sipmsg.TLS, Server: srv, Register: registerFunc(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewFlow(tt.cfg)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
	var ce *CertificateError
	require.False(t, errors.As(ErrNoFlow, &ce))
}

func TestMeasureStreamLifetimeConfig(t *testing.T) {
	t.Parallel()
	srv := netip.MustParseAddrPort("127.0.0.1:5060")
	for _, tt := range []struct {
		name   string
		cfg    FlowConfig
		max    time.Duration
		probes int
	}{
		{"udp", FlowConfig{Transport: sipmsg.UDP, Server: srv}, time.Second, 2},
		{"no probes", FlowConfig{Transport: sipmsg.TCP, Server: srv}, time.Second, 0},
		{"no max", FlowConfig{Transport: sipmsg.TCP, Server: srv}, 0, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := MeasureStreamLifetime(context.Background(), tt.cfg, tt.max, tt.probes)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
}

// Against an edge that answers pings, every probe of a loopback path
// succeeds: the lifetime is at least max.
func TestMeasureStreamLifetimeOpen(t *testing.T) {
	t.Parallel()
	te := newTestEdge(t, EdgeConfig{})
	addr := te.serve(t, sipmsg.TCP)
	clk := clock.NewFake(time.Unix(0, 0))
	done := make(chan StreamLifetime, 1)
	go func() {
		r, err := MeasureStreamLifetime(context.Background(), FlowConfig{Transport: sipmsg.TCP, Server: addr, Clock: clk, PongTimeout: time.Hour}, 4*time.Second, 2)
		require.NoError(t, err)
		done <- r
	}()
	for {
		select {
		case r := <-done:
			require.Equal(t, StreamLifetime{Lower: 4 * time.Second}, r)
			return
		case <-time.After(time.Millisecond):
			clk.Advance(100 * time.Millisecond)
		}
	}
}

// SetTiming takes a lifetime measured after New; the Flow-Timer still caps it.
func TestFlowSetTiming(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		flowTimer time.Duration
		timing    keepalive.Timing
		want      time.Duration
	}{
		{"no Flow-Timer: half the lifetime", 0, keepalive.Timing{Lifetime: 8 * time.Second}, 4 * time.Second},
		{"Flow-Timer caps", 25 * time.Second, keepalive.Timing{Lifetime: 100 * time.Second}, 25 * time.Second},
		{"shorter lifetime wins", 25 * time.Second, keepalive.Timing{Lifetime: 10 * time.Second}, 5 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			te := newTestEdge(t, EdgeConfig{FlowTimer: tt.flowTimer})
			addr := te.serve(t, sipmsg.TCP)
			ev := newEvents()
			f := runFlow(t, FlowConfig{Transport: sipmsg.TCP, Server: addr, Register: registerFunc(1), OnEvent: ev.on})
			ev.wait(t, Registered)
			f.SetTiming(tt.timing)
			require.Equal(t, tt.want, f.KeepaliveInterval())
		})
	}
}
