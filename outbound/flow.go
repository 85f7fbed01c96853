package outbound

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sipmsg"
)

// Errors of a flow.
var (
	// ErrNoFlow: the flow has no connection now (it failed and is being
	// formed again).
	ErrNoFlow = errors.New("outbound: no flow")
	// ErrConfig: the FlowConfig misses something.
	ErrConfig = errors.New("outbound: bad config")
	// ErrFlowFailed: a keep-alive went unanswered (no pong on TCP/TLS, no
	// STUN answer on UDP) within its wait (FlowConfig.PongTimeout), RFC
	// 5626 §4.4.
	ErrFlowFailed = errors.New("outbound: flow failed")
	// ErrRegister: the REGISTER over the flow did not succeed.
	ErrRegister = errors.New("outbound: register")
	// ErrMappingChanged: on UDP, STUN saw a new public address: the NAT
	// lost the binding, and the registrar's contact is stale (RFC 5626
	// §4.4.2); the flow is formed again.
	ErrMappingChanged = errors.New("outbound: NAT mapping changed")
	// ErrFlowRejected: the edge answered a request sent over the flow
	// with 430 Flow Failed (RFC 5626 §5.3, §11.5): it holds no flow for
	// this connection any more (it restarted, or dropped it), so requests
	// for the UA cannot come back over it; the flow is formed again and
	// registers anew (§4.5). It wraps ErrFlowFailed.
	ErrFlowRejected = fmt.Errorf("%w: the edge answered 430 Flow Failed", ErrFlowFailed)
	// ErrTimeout: a transaction got no final answer in 64·T1.
	ErrTimeout = errors.New("outbound: no answer")
)

// FlowConfig configures one flow: one connection from a UA to one edge proxy,
// registered with one reg-id (RFC 5626 §4.2).
type FlowConfig struct {
	Transport  sipmsg.Transport // UDP, TCP or TLS
	Server     netip.AddrPort   // the edge proxy's SIP address
	ServerName string           // TLS: the name its certificate must carry (SNI too)
	RootCAs    *x509.CertPool   // TLS: the roots to check it against; nil: the system's
	// Dial opens the connection ("udp", "tcp"); nil: a net.Dialer.
	// TLS runs over what Dial("tcp") returns.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Register sends a REGISTER over f (f.Transact) and returns the final
	// 2xx answer, or an error. The flow calls it on every new connection;
	// it reads Require: outbound and Flow-Timer from the answer.
	Register func(ctx context.Context, f *Flow) ([]byte, error)
	// OnMessage gets every SIP message read from the flow that is not the
	// answer to a Transact: requests from the edge (connection reuse,
	// RFC 5923), stray responses. b is valid only during the call; answer
	// with f.Send, on the same connection.
	OnMessage func(f *Flow, b []byte)
	// OnEvent is told what happened to the flow (the app's view of it).
	OnEvent func(Event)

	// Timing sets the keep-alive interval until the registrar sends a
	// Flow-Timer, which then wins (RFC 5626 §4.4: 80-100 % of it). For UDP
	// set Timing.Lifetime to the binding lifetime nat measured; for
	// TCP/TLS the bound of StreamLifetime (or the 96-120 s default).
	Timing keepalive.Timing
	// PongTimeout bounds how long a keep-alive waits for its answer; 0:
	// the 10 s of RFC 5626 §4.4.1. The wait itself is the RTO of the
	// flow's own keep-alive round trips (RFC 6298, at least 1 s, at most
	// PongTimeout and 2/5 of the keep-alive interval), and it comes out of
	// the interval: the next keep-alive leaves the jittered interval less
	// that wait after the last answer. So the edge still hears from the UA
	// within its Flow-Timer, and a flow that dies at any moment is found
	// failed within one keep-alive interval (keepalive.KeeperConfig's
	// WithinInterval). A path whose round trip exceeds 2/5 of the interval
	// cannot be kept that way: its keep-alives fail.
	PongTimeout time.Duration
	// Recovery is the backoff between attempts to form the flow again.
	Recovery keepalive.Recovery
	// Group holds the UA's other flows, to tell "all flows failed" (base
	// 30 s) from "another flow works" (base 90 s); nil: this flow alone.
	Group *Group
	// MaxMessage bounds a message read from a stream; 0: sipmsg.MaxMessageSize.
	MaxMessage int

	Clock  clock.Clock  // nil: the system clock
	Rand   rand.Source  // backoff and jitter; nil: math/rand/v2
	Logger *slog.Logger // nil: discard
}

// Flow keeps one RFC 5626 flow to an edge proxy: it connects, registers
// through FlowConfig.Register, sends keep-alives (CRLF pings on TCP/TLS, STUN
// on UDP), reads the connection, and when the flow fails forms it again
// after the §4.5 backoff. Make one with NewFlow and run it with Run.
//
// A Flow is safe for concurrent use.
type Flow struct {
	cfg   FlowConfig
	clock clock.Clock
	log   *slog.Logger

	mu        sync.Mutex
	conn      net.Conn
	end       context.CancelCauseFunc // ends conn's run with a cause
	local     netip.AddrPort
	stun      *nat.Client
	keeper    *keepalive.Keeper
	txs       map[string]chan []byte
	up        bool
	outbound  bool
	flowTimer time.Duration
	failures  int
	lost      bool       // a registered flow failed and none registered since
	wmu       sync.Mutex // serializes writes on conn
}

// NewFlow checks cfg and returns a flow; call Run.
func NewFlow(cfg FlowConfig) (*Flow, error) {
	switch cfg.Transport {
	case sipmsg.UDP, sipmsg.TCP, sipmsg.TLS:
	default:
		return nil, fmt.Errorf("%w: transport %v (want UDP, TCP or TLS)", ErrConfig, cfg.Transport)
	}
	if !cfg.Server.IsValid() || cfg.Register == nil {
		return nil, fmt.Errorf("%w: Server and Register are required", ErrConfig)
	}
	if cfg.Transport == sipmsg.TLS && cfg.ServerName == "" {
		return nil, fmt.Errorf("%w: TLS needs ServerName", ErrConfig)
	}
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = keepalive.DefaultTimeout
	}
	f := &Flow{cfg: cfg, clock: clock.OrSystem(cfg.Clock), log: cfg.Logger, txs: map[string]chan []byte{}}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Group != nil {
		cfg.Group.add(f)
	}
	return f, nil
}

// Transport returns the flow's transport.
func (f *Flow) Transport() sipmsg.Transport { return f.cfg.Transport }

// Server returns the edge proxy's address.
func (f *Flow) Server() netip.AddrPort { return f.cfg.Server }

// Local returns the local address of the current connection (for Via and
// Contact), zero when there is none.
func (f *Flow) Local() netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local
}

// Up reports whether the flow is registered and not failed.
func (f *Flow) Up() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up
}

// Outbound reports whether the last registration's answer carried
// Require: outbound (the registrar applied RFC 5626).
func (f *Flow) Outbound() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.outbound
}

// KeepaliveInterval returns the current base interval of keep-alives.
func (f *Flow) KeepaliveInterval() time.Duration {
	f.mu.Lock()
	k, t := f.keeper, f.timing()
	f.mu.Unlock()
	if k == nil {
		return t.Base(f.cfg.Transport != sipmsg.UDP)
	}
	return k.Interval()
}

// PongTimeout returns how long the flow's next keep-alive waits for its
// answer (see FlowConfig.PongTimeout); 0 when the flow is not registered.
func (f *Flow) PongTimeout() time.Duration {
	f.mu.Lock()
	k := f.keeper
	f.mu.Unlock()
	if k == nil {
		return 0
	}
	return k.AnswerTimeout()
}

// SetTiming replaces the keep-alive timing of Config.Timing, for a lifetime
// measured after New (MeasureStreamLifetime, nat's binding lifetime); the
// registrar's Flow-Timer still caps it. A running flow takes it at once.
func (f *Flow) SetTiming(t keepalive.Timing) {
	f.mu.Lock()
	f.cfg.Timing = t
	k, kt := f.keeper, f.timing()
	f.mu.Unlock()
	if k != nil {
		k.SetTiming(kt)
	}
}

// Send writes one message (or keep-alive) on the flow's connection.
func (f *Flow) Send(b []byte) error {
	f.mu.Lock()
	c := f.conn
	f.mu.Unlock()
	if c == nil {
		return ErrNoFlow
	}
	return f.write(c, b)
}

func (f *Flow) write(c net.Conn, b []byte) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_ = c.SetWriteDeadline(time.Now().Add(f.cfg.PongTimeout))
	_, err := c.Write(b)
	_ = c.SetWriteDeadline(time.Time{}) // the STUN client writes without one
	return err
}

// Run forms the flow and keeps it until ctx ends: connect, register, keep
// alive, read; on failure wait the RFC 5626 §4.5 backoff (from the clock)
// and start again. It returns ctx's error.
func (f *Flow) Run(ctx context.Context) error {
	for {
		err := f.once(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.mu.Lock()
		wasUp := f.up
		f.up = false
		f.mu.Unlock()
		allFailed := f.cfg.Group == nil || f.cfg.Group.allDown()
		var wait time.Duration
		if wasUp {
			// the flow worked and failed: form a new one at once (§4.5)
			f.mu.Lock()
			f.failures, f.lost = 0, true
			f.mu.Unlock()
			f.emit(Event{Kind: FlowFailed, Err: err, AllFailed: allFailed})
		} else {
			f.mu.Lock()
			f.failures++
			n := f.failures
			f.mu.Unlock()
			wait = f.cfg.Recovery.Wait(n, allFailed, f.cfg.Rand)
			f.emit(Event{Kind: Retrying, Err: err, Wait: wait, Failures: n, AllFailed: allFailed})
		}
		f.log.Info("outbound: flow down", "server", f.cfg.Server, "transport", f.cfg.Transport, "err", err, "wait", wait)
		if wait > 0 {
			if err := f.sleep(ctx, wait); err != nil {
				return err
			}
		}
	}
}

// sleep waits d on the flow's clock.
func (f *Flow) sleep(ctx context.Context, d time.Duration) error {
	done := make(chan struct{})
	t := f.clock.AfterFunc(d, func() { close(done) })
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// once runs one connection: it returns why the connection ended.
func (f *Flow) once(ctx context.Context) error {
	c, err := f.dial(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	defer c.Close()

	f.mu.Lock()
	f.conn, f.end = c, cancel
	f.local = callerconn.AddrPortOf(c.LocalAddr())
	if f.cfg.Transport == sipmsg.UDP {
		f.stun = nat.NewClient(packetConn{c}, nat.ClientConfig{CallerReads: true, Clock: f.cfg.Clock, Logger: f.cfg.Logger})
	}
	f.mu.Unlock()
	defer f.detach(c)
	f.emit(Event{Kind: Connected, Local: f.Local()})

	readErr := make(chan error, 1)
	go func() { readErr <- f.read(c) }()

	answer, err := f.cfg.Register(ctx, f)
	if err != nil {
		_ = c.Close()
		<-readErr
		return fmt.Errorf("%w: %w", ErrRegister, err)
	}
	var m sipmsg.Message
	if err := m.Parse(answer); err != nil || m.StatusCode() < 200 || m.StatusCode() > 299 {
		_ = c.Close()
		<-readErr
		return fmt.Errorf("%w: answer is not a 2xx", ErrRegister)
	}
	ft, _ := m.FlowTimer() // 0 when the answer has none
	ob := m.HasOptionTag(sipmsg.HdrRequire, sipmsg.OptionOutbound)
	f.mu.Lock()
	f.flowTimer = ft
	f.mu.Unlock()
	k, err := f.startKeeper(c, cancel, registeredAs(&m))
	if err != nil {
		_ = c.Close()
		<-readErr
		return err
	}
	f.mu.Lock()
	f.up, f.outbound, f.failures = true, ob, 0
	f.keeper = k
	reformed := f.lost
	f.lost = false
	f.mu.Unlock()
	f.emit(Event{Kind: Registered, Local: f.Local(), Outbound: ob, FlowTimer: ft, Interval: k.Interval(), Reformed: reformed})
	defer k.Stop()

	select {
	case err := <-readErr:
		return err
	case <-ctx.Done():
		_ = c.Close()
		<-readErr
		return context.Cause(ctx)
	}
}

func (f *Flow) detach(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == c {
		f.conn, f.keeper, f.end = nil, nil, nil
		if f.stun != nil {
			_ = f.stun.Close()
			f.stun = nil
		}
	}
	for id, ch := range f.txs {
		close(ch)
		delete(f.txs, id)
	}
}

// timing is the configured timing with the Flow-Timer as the negotiated
// interval: keep-alives at 80-100 % of it (RFC 5626 §4.4.1). f.mu is held.
func (f *Flow) timing() keepalive.Timing {
	t := f.cfg.Timing
	if f.flowTimer > 0 {
		t.Negotiated = f.flowTimer
	}
	return t
}

// registeredAs returns the address the registrar saw the REGISTER from, as
// its answer's top Via says with received= and an rport= value; zero when
// it does not say both.
func registeredAs(m *sipmsg.Message) netip.AddrPort {
	v, err := m.ParseTopVia()
	if err != nil {
		return netip.AddrPort{}
	}
	a, okA := v.ReceivedAddr(m.Bytes())
	p, okP := v.RportValue(m.Bytes())
	if !okA || !okP || p == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p))
}

// startKeeper starts the keep-alives of connection c; a failed flow
// cancels the connection's context with ErrFlowFailed. On UDP, seen is the
// address the registrar saw (registeredAs): a STUN answer that differs, a
// router reboot before the first keep-alive too, re-forms the flow.
func (f *Flow) startKeeper(c net.Conn, cancel context.CancelCauseFunc, seen netip.AddrPort) (*keepalive.Keeper, error) {
	f.mu.Lock()
	t := f.timing()
	f.mu.Unlock()
	kc := keepalive.KeeperConfig{
		Timing: t, Timeout: f.cfg.PongTimeout, WithinInterval: true, Clock: f.cfg.Clock, Rand: f.cfg.Rand, Logger: f.cfg.Logger,
		OnEvent: func(e keepalive.Event) {
			switch e.Kind {
			case keepalive.FlowFailed:
				cancel(fmt.Errorf("%w: %d keep-alives unanswered: %w", ErrFlowFailed, e.Misses, errOr(e.Err)))
			case keepalive.MappingChanged:
				f.emit(Event{Kind: MappingChanged, Mapping: e.Mapping, Previous: e.Previous})
				cancel(fmt.Errorf("%w: %s -> %s", ErrMappingChanged, e.Previous, e.Mapping))
			}
		},
	}
	if f.cfg.Transport == sipmsg.UDP {
		f.mu.Lock()
		kc.Kind, kc.Binder, kc.Server, kc.Mapping = keepalive.STUN, f.stun, f.cfg.Server, seen
		f.mu.Unlock()
	} else {
		kc.Kind = keepalive.CRLF
		kc.Send = func(b []byte) error { return f.write(c, b) }
	}
	k, err := keepalive.NewKeeper(kc)
	if err != nil {
		return nil, err
	}
	k.Start()
	return k, nil
}

func errOr(err error) error {
	if err == nil {
		return ErrTimeout
	}
	return err
}

func (f *Flow) emit(e Event) {
	if f.cfg.OnEvent == nil {
		return
	}
	e.At = f.clock.Now()
	e.Server = f.cfg.Server
	e.Transport = f.cfg.Transport
	f.cfg.OnEvent(e)
}
