package keepalive

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/rtt"
	"github.com/sipnat/sipnat/sipmsg"
)

// Binder sends a STUN Binding request to server over the caller's SIP
// socket and returns the mapped address. *nat.Client implements it; the
// caller's read loop hands STUN responses to that client. It has the shape
// and name of discovery.Binder, so one client serves both.
type Binder interface {
	// Binding sends a Binding request to server and returns the mapped
	// address of the answer.
	Binding(ctx context.Context, server netip.AddrPort) (netip.AddrPort, error)
}

// Ping and pong of RFC 5626 §4.4.1, and the default UDP keep-alive.
var (
	crlfPing = []byte("\r\n\r\n")
	crlfPong = []byte("\r\n")
)

// DefaultTimeout is how long a Keeper waits for an answer: the 10 s RFC 5626
// §4.4.1 gives a pong.
const DefaultTimeout = 10 * time.Second

// DefaultMinTimeout is the shortest wait for an answer WithinInterval
// derives: RFC 6298's minimum RTO (rule 2.4), so a loaded path or host is
// not taken for a dead flow.
const DefaultMinTimeout = time.Second

// SIP timer T1 and T2 (RFC 3261 §17.1.2.2): OPTIONS keep-alives on an
// unreliable flow are retransmitted after T1, 2*T1, ... up to T2 apart.
const (
	t1 = 500 * time.Millisecond
	t2 = 4 * time.Second
)

// KeeperConfig configures a Keeper for one flow. Kind is required, and what
// sends for it: Send (CRLF, Options, UDP, RTP), Binder and Server (STUN),
// Request (Options).
type KeeperConfig struct {
	Kind Kind // what to send: CRLF, STUN, Options, UDP or RTP

	// Send writes one keep-alive on the flow: conn.Write on a TCP/TLS
	// connection or a connected UDP socket, or a closure around
	// WriteToUDPAddrPort. It is called with the Keeper's lock held, from
	// the clock's timer goroutine, and must not call the Keeper.
	Send func(b []byte) error
	// Binder and Server: the STUN kind asks Binder for the mapping from
	// Server, which should be the SIP server's own address and port so the
	// keep-alive refreshes the very binding SIP uses (RFC 5626 §4.4.2):
	// behind an address-and-port-dependent NAT, STUN to another port keeps
	// only that port's binding. Each request is bounded by the smaller of
	// Timeout and the interval.
	Binder Binder
	Server netip.AddrPort
	// Mapping is the public address the flow is known by when the Keeper
	// starts (received/rport of the REGISTER's answer); the first STUN
	// answer that differs is MappingChanged. Zero: the first answer sets it.
	Mapping netip.AddrPort
	// Request appends the n-th OPTIONS request (n = 1, 2, ...) to dst, for
	// example with sipmsg.AppendOptions and n as CSeq and in the branch.
	Request func(dst []byte, n uint32) []byte
	// Transport is the flow's SIP transport (zero: UDP); over a reliable
	// one (sipmsg.Transport.Reliable: TCP, TLS, ...) OPTIONS are not
	// retransmitted.
	Transport sipmsg.Transport
	// NoAnswer sends OPTIONS keep-alives without waiting for responses
	// (for servers that do not answer them): only send errors are misses.
	NoAnswer bool
	// Payload replaces the default packet of the UDP kind (CRLFCRLF) and of
	// the RTP kind (an empty RTP packet).
	Payload []byte
	// RTP is the stream state the RTP kind continues.
	RTP RTPState

	Timing     Timing        // how often to send
	Timeout    time.Duration // wait for an answer; 0 means DefaultTimeout (with WithinInterval: the longest wait)
	MaxMisses  int           // unanswered keep-alives in a row before FlowFailed; 0 means 1 (RFC 5626)
	MaxBackoff time.Duration // cap of the probe interval of a failed flow; 0 means 8 times the interval

	// WithinInterval reports a flow that dies at any moment failed at most
	// one base interval later, instead of up to an interval plus Timeout: the
	// wait for an answer comes out of the interval rather than adding to it.
	// The wait is the RTO of the keep-alives' own round trips (RFC 6298:
	// SRTT + 4·RTTVAR), at least MinTimeout and at most Timeout (RFC 5626's
	// 10 s) and 2/5 of the base interval (the whole bound before the first
	// answer); the next keep-alive leaves a jittered interval minus that
	// wait after the last answer (or Start). So keep-alives still come at
	// least once per interval (RFC 5626 §4.4.1: the server hears from the
	// UA within its Flow-Timer), and a flow that breaks right after an
	// answer is found by the next keep-alive's silence within the interval.
	// It applies to the kinds that get answers (CRLF, STUN, Options).
	WithinInterval bool
	// MinTimeout is the floor of WithinInterval's wait; 0 means
	// DefaultMinTimeout.
	MinTimeout time.Duration

	Clock   clock.Clock  // nil: the system clock
	Rand    rand.Source  // jitter source; nil: math/rand/v2
	Logger  *slog.Logger // nil: discard
	OnEvent func(Event)  // called without the lock held; may call the Keeper
}

type phase uint8

const (
	idle     phase = iota // waiting to send the next keep-alive
	awaiting              // a keep-alive waits for its answer
)

// Keeper sends the keep-alives of one flow at its interval with RFC 5626
// jitter, tracks their answers and reports MappingChanged, FlowFailed and
// Recovered. It runs on clock timers only: no goroutine of its own.
//
// A Keeper is safe for concurrent use.
type Keeper struct {
	cfg   KeeperConfig
	clock clock.Clock
	log   *slog.Logger

	mu       sync.Mutex
	running  bool
	phase    phase
	gen      uint64
	timer    clock.Timer
	deadline time.Time
	rto      time.Duration
	misses   int
	failed   bool
	lastErr  error
	mapping  netip.AddrPort
	n        uint32
	sent     uint64
	cancel   context.CancelFunc
	buf      []byte
	rtp      RTPState
	started  time.Time
	events   []Event
	est      rtt.Estimator // round trips of answered keep-alives
	sentAt   time.Time     // when the keep-alive awaiting its answer was sent
	resent   bool          // it was retransmitted: its answer is no sample (Karn)
	waitFor  time.Duration // how long it waits
}

// New checks cfg and returns a stopped Keeper; call Start.
func NewKeeper(cfg KeeperConfig) (*Keeper, error) {
	switch cfg.Kind {
	case CRLF, UDP, RTP:
		if cfg.Send == nil {
			return nil, fmt.Errorf("%w: kind %v needs Send", ErrConfig, cfg.Kind)
		}
	case Options:
		if cfg.Send == nil || cfg.Request == nil {
			return nil, fmt.Errorf("%w: kind %v needs Send and Request", ErrConfig, cfg.Kind)
		}
	case STUN:
		if cfg.Binder == nil || !cfg.Server.IsValid() {
			return nil, fmt.Errorf("%w: kind %v needs Binder and Server", ErrConfig, cfg.Kind)
		}
	default:
		return nil, fmt.Errorf("%w: unknown kind %v", ErrConfig, cfg.Kind)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxMisses <= 0 {
		cfg.MaxMisses = 1
	}
	if cfg.MinTimeout <= 0 {
		cfg.MinTimeout = DefaultMinTimeout
	}
	k := &Keeper{cfg: cfg, clock: clock.OrSystem(cfg.Clock), log: cfg.Logger, rtp: cfg.RTP, mapping: cfg.Mapping}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	return k, nil
}

// Interval returns the current base interval (before jitter).
func (k *Keeper) Interval() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.base()
}

func (k *Keeper) base() time.Duration {
	return k.cfg.Timing.Base(k.cfg.Kind == CRLF || k.cfg.Transport.Reliable())
}

// AnswerTimeout returns how long the next keep-alive waits for its answer:
// Timeout, or with WithinInterval the wait derived from the round trips.
func (k *Keeper) AnswerTimeout() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.wait()
}

// fits reports whether the answer's wait comes out of the interval.
func (k *Keeper) fits() bool {
	return k.cfg.WithinInterval && k.cfg.Kind.answered() && !k.cfg.NoAnswer
}

// wait is how long a keep-alive waits for its answer. k.mu is held.
func (k *Keeper) wait() time.Duration {
	if !k.fits() {
		return k.cfg.Timeout
	}
	hi := min(k.cfg.Timeout, k.base()*2/5)
	return k.est.RTO(k.cfg.MinTimeout, hi)
}

// next is the time from an answer (or Start) to the next keep-alive: a
// jittered interval, less the next keep-alive's wait with WithinInterval.
func (k *Keeper) next() time.Duration {
	d := k.jitter(k.base())
	if k.fits() {
		d -= k.wait()
	}
	return d
}

func (k *Keeper) jitter(d time.Duration) time.Duration {
	if k.cfg.Timing.NoJitter {
		return d
	}
	return Jitter(d, k.cfg.Rand)
}

// Start schedules the first keep-alive one jittered interval from now (the
// flow was just used, by a REGISTER). Starting a running Keeper does nothing.
func (k *Keeper) Start() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.running {
		return
	}
	k.running = true
	k.started = k.clock.Now()
	k.phase = idle
	k.schedule(k.next())
}

// Stop cancels the schedule and any STUN request in flight. A stopped
// Keeper may be started again.
func (k *Keeper) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.running = false
	k.gen++
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
	}
	if k.cancel != nil {
		k.cancel()
		k.cancel = nil
	}
}

// SetTiming replaces the timing (for example when nat measured the binding
// lifetime, or a response carried a keep value) and reschedules the next
// keep-alive one new jittered interval from now.
func (k *Keeper) SetTiming(t Timing) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cfg.Timing = t
	if k.running && k.phase == idle {
		k.schedule(k.next())
	}
}

// Timing returns the current timing.
func (k *Keeper) Timing() Timing {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cfg.Timing
}

// Mapping returns the mapped address the last STUN keep-alive reported.
func (k *Keeper) Mapping() netip.AddrPort {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.mapping
}

// Failed reports whether the flow is failed (FlowFailed without Recovered since).
func (k *Keeper) Failed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.failed
}

// Sent returns how many keep-alive packets (retransmissions included) were sent.
func (k *Keeper) Sent() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sent
}

// RTP returns the stream state as of now: the next sequence number after
// the keep-alives sent so far and the timestamp moved on by the time since
// Start, so that the media stack resumes the stream where they left it.
func (k *Keeper) RTP() RTPState {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.rtp
	if s.ClockRate > 0 && !k.started.IsZero() {
		s.Timestamp += uint32(uint64(k.clock.Now().Sub(k.started)) * uint64(s.ClockRate) / uint64(time.Second))
	}
	return s
}

// Answer tells the Keeper that the answer to its keep-alive arrived: a pong
// (a CRLF between messages on a CRLF flow) or any response to its OPTIONS.
// The caller's read loop calls it. It reports whether a keep-alive was
// waiting for it.
func (k *Keeper) Answer() bool {
	k.mu.Lock()
	if !k.running || k.phase != awaiting || k.cfg.Kind == STUN {
		k.mu.Unlock()
		return false
	}
	if !k.resent {
		k.est.Add(k.clock.Now().Sub(k.sentAt))
	}
	k.succeed()
	k.flush()
	return true
}

// PingNow sends a keep-alive now instead of at its time (after a network
// change, say). For the STUN kind it blocks until the Binding completes.
func (k *Keeper) PingNow() {
	k.mu.Lock()
	if !k.running || k.phase != idle {
		k.mu.Unlock()
		return
	}
	k.gen++
	k.fireLocked()
}

// schedule arms the timer to fire after d, cancelling any earlier arming.
func (k *Keeper) schedule(d time.Duration) {
	k.gen++
	g := k.gen
	if k.timer != nil {
		k.timer.Stop()
	}
	k.timer = k.clock.AfterFunc(d, func() { k.fire(g) })
}

func (k *Keeper) fire(g uint64) {
	k.mu.Lock()
	if g != k.gen || !k.running {
		k.mu.Unlock()
		return
	}
	k.fireLocked()
}

// fireLocked runs one step with k.mu held and releases it.
func (k *Keeper) fireLocked() {
	now := k.clock.Now()
	if k.phase == awaiting {
		if now.Before(k.deadline) && k.cfg.Kind == Options && !k.cfg.Transport.Reliable() {
			k.resent = true
			k.send(k.buf)
			k.rto = min(2*k.rto, t2, k.base())
			k.schedule(min(k.rto, k.deadline.Sub(now)))
			k.flush()
			return
		}
		k.fail(fmt.Errorf("%v keep-alive: %w within %v", k.cfg.Kind, ErrNoAnswer, k.waitFor))
		k.flush()
		return
	}
	k.n++
	switch k.cfg.Kind {
	case STUN:
		k.binding()
		return
	case CRLF:
		k.buf = append(k.buf[:0], crlfPing...)
	case Options:
		k.buf = k.cfg.Request(k.buf[:0], k.n)
	case UDP:
		if k.cfg.Payload != nil {
			k.buf = append(k.buf[:0], k.cfg.Payload...)
		} else {
			k.buf = append(k.buf[:0], crlfPing...)
		}
	case RTP:
		if k.cfg.Payload != nil {
			k.buf = append(k.buf[:0], k.cfg.Payload...)
		} else {
			k.buf = k.rtp.appendKeepalive(k.buf[:0], now.Sub(k.started))
		}
	}
	if err := k.send(k.buf); err != nil {
		k.fail(err)
		k.flush()
		return
	}
	if !k.cfg.Kind.answered() || k.cfg.NoAnswer {
		k.succeed()
		k.flush()
		return
	}
	k.phase = awaiting
	k.sentAt, k.resent, k.waitFor = now, false, k.wait()
	k.deadline = now.Add(k.waitFor)
	if k.cfg.Kind == Options && !k.cfg.Transport.Reliable() {
		k.rto = min(t1, k.base())
		k.schedule(min(k.rto, k.waitFor))
	} else {
		k.schedule(k.waitFor)
	}
	k.flush()
}

func (k *Keeper) send(b []byte) error {
	k.sent++
	err := k.cfg.Send(b)
	if err != nil {
		k.log.Debug("keepalive: send failed", "kind", k.cfg.Kind, "err", err)
	}
	return err
}

// binding runs one STUN keep-alive with k.mu held on entry; it releases
// the lock while the request is in flight.
func (k *Keeper) binding() {
	k.phase = awaiting
	k.gen++
	g := k.gen
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	// Bound the transaction by the interval too: the client's retransmissions
	// grow apart (RTO doubling), and a gap longer than the binding lifetime
	// would let the binding expire during the very request that should keep it.
	timeout := min(k.cfg.Timeout, k.base())
	if k.fits() {
		timeout = k.wait()
	}
	k.waitFor = timeout
	var expired atomic.Bool // the wait ended, not Stop: ErrNoAnswer
	t := k.clock.AfterFunc(timeout, func() { expired.Store(true); cancel() })
	k.sent++
	start := k.clock.Now()
	k.mu.Unlock()

	mapped, err := k.cfg.Binder.Binding(ctx, k.cfg.Server)
	t.Stop()
	cancel()

	k.mu.Lock()
	if g != k.gen || !k.running {
		k.mu.Unlock()
		return
	}
	k.cancel = nil
	if err != nil {
		if expired.Load() {
			err = fmt.Errorf("%w within %v: %w", ErrNoAnswer, timeout, err)
		}
		k.fail(fmt.Errorf("STUN keep-alive to %v: %w", k.cfg.Server, err))
		k.flush()
		return
	}
	if k.mapping.IsValid() && mapped != k.mapping {
		k.events = append(k.events, Event{Kind: MappingChanged, At: k.clock.Now(), Mapping: mapped, Previous: k.mapping})
		k.log.Info("keepalive: mapping changed", "old", k.mapping, "new", mapped)
	}
	k.mapping = mapped
	k.est.Add(k.clock.Now().Sub(start)) // retransmissions inside make it longer: a safe side
	k.succeed()
	k.flush()
}

// succeed records an answered (or, for kinds without answers, sent)
// keep-alive and schedules the next one.
func (k *Keeper) succeed() {
	if k.failed {
		k.events = append(k.events, Event{Kind: Recovered, At: k.clock.Now(), Mapping: k.mapping, Misses: k.misses})
		k.failed = false
	}
	k.misses = 0
	k.lastErr = nil
	k.phase = idle
	k.schedule(k.next())
}

// fail records a missed keep-alive and schedules the next one, backing
// off once the flow has failed.
func (k *Keeper) fail(err error) {
	k.misses++
	k.lastErr = err
	k.phase = idle
	base := k.base()
	if k.misses >= k.cfg.MaxMisses {
		if !k.failed {
			k.failed = true
			k.events = append(k.events, Event{Kind: FlowFailed, At: k.clock.Now(), Mapping: k.mapping, Misses: k.misses, Err: err})
			k.log.Info("keepalive: flow failed", "kind", k.cfg.Kind, "misses", k.misses, "err", err)
		}
		maxB := k.cfg.MaxBackoff
		if maxB <= 0 {
			maxB = 8 * base
		}
		k.schedule(k.jitter(Backoff(base, maxB, k.misses-k.cfg.MaxMisses+1)))
		return
	}
	k.schedule(k.next())
}

// flush releases k.mu and delivers the queued events.
func (k *Keeper) flush() {
	ev := k.events
	k.events = nil
	k.mu.Unlock()
	if k.cfg.OnEvent != nil {
		for _, e := range ev {
			k.cfg.OnEvent(e)
		}
	}
}
