package outbound

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sipmsg"
)

// Errors of an edge.
var (
	// ErrFlowGone: the flow a request targets has no connection any more;
	// answer the request with 430 Flow Failed (RFC 5626 §5.3).
	ErrFlowGone = errors.New("outbound: flow gone")
	// ErrFlood: a connection sent keep-alives faster than
	// EdgeConfig.MaxKeepalives a second; it was closed.
	ErrFlood = errors.New("outbound: keep-alive flood")
)

// EdgeConfig configures an Edge.
type EdgeConfig struct {
	// Self is the edge's address as UAs and the registrar reach it: the
	// host of its Path URIs.
	Self netip.AddrPort
	// Key signs flow tokens (HMAC-SHA256); nil: a random key, so tokens
	// do not survive a restart (nor should the flows they name).
	Key []byte
	// FlowTimer is the keep-alive interval the edge asks UAs for in
	// REGISTER answers (AppendFlowTimerTo); 0: no Flow-Timer is sent, and
	// the UA chooses.
	FlowTimer time.Duration
	// TLS serves TLS listeners (ServeStream with sipmsg.TLS).
	TLS *tls.Config
	// MaxMessage bounds one message; 0: sipmsg.MaxMessageSize.
	MaxMessage int
	// FrameTimeout closes a connection that started a message and did not
	// finish it in time (a slow sender); 0: 10 s.
	FrameTimeout time.Duration
	// IdleTimeout closes a connection silent for this long; 0: three
	// FlowTimers, or 10 min without one.
	IdleTimeout time.Duration
	// MaxKeepalives bounds the keep-alives a connection may send in one
	// second; more is a flood and closes it. 0: 20.
	MaxKeepalives int
	// MaxConns bounds the stream connections open at once (all listeners);
	// one more is closed at accept and counted (Refused). 0: 10000.
	MaxConns int
	// MaxConnsPerSource bounds the stream connections open at once from
	// one source: an IPv4 address, or an IPv6 /64 (what one host or
	// subscriber gets), so that one source cannot take all MaxConns. One
	// more is closed at accept and counted (Refused). 0: a tenth of
	// MaxConns, at least 16 (and at most MaxConns). UAs behind one NAT share
	// a source; raise it for UAs behind a CGNAT.
	MaxConnsPerSource int
	// Handle gets every SIP message read on the edge's sockets, with the
	// flow it came on and the context of the Serve call that read it. b is
	// valid only during the call. It is called from one goroutine per
	// connection (and one per packet socket).
	Handle func(ctx context.Context, from sipmsg.Flow, b []byte)

	Clock  clock.Clock  // nil: the system clock
	Logger *slog.Logger // nil: discard
}

// Edge is the transport half of an RFC 5626 edge proxy: it accepts UA
// connections on TCP and TLS listeners and reads a UDP socket, answers
// CRLF pings with pongs and STUN Binding requests on its SIP ports
// (§4.4), bounds what a peer may send, names each flow with a signed token
// for Path (§5.2), and sends requests for a UA back over the UA's own
// connection, or says the flow is gone (430, §5.3). The SIP logic (NAT
// fixes, forwarding) stays with the caller's Handle.
//
// An Edge is safe for concurrent use.
type Edge struct {
	cfg   EdgeConfig
	clock clock.Clock
	log   *slog.Logger

	mu       sync.Mutex
	streams  map[sipmsg.Flow]*edgeConn
	byRemote map[netip.AddrPort]sipmsg.Flow    // stream flows by the UA's address
	packets  map[netip.AddrPort]net.PacketConn // by local address
	udp      [2]netip.AddrPort                 // the first UDP socket's address of each family (udpFamily)
	open     atomic.Int64                      // stream connections being served
	sources  map[netip.Prefix]int              // open stream connections per source (sourceOf)
	refused  atomic.Uint64                     // connections closed at accept (MaxConns)
}

type edgeConn struct {
	c   net.Conn
	wmu sync.Mutex
}

// NewEdge returns an edge for cfg.
func NewEdge(cfg EdgeConfig) (*Edge, error) {
	if !cfg.Self.IsValid() || cfg.Handle == nil {
		return nil, fmt.Errorf("%w: edge needs Self and Handle", ErrConfig)
	}
	if cfg.Key == nil {
		cfg.Key = make([]byte, 32)
		_, _ = rand.Read(cfg.Key)
	}
	if cfg.FrameTimeout <= 0 {
		cfg.FrameTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
		if cfg.FlowTimer > 0 {
			cfg.IdleTimeout = 3 * cfg.FlowTimer
		}
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10000
	}
	if cfg.MaxConnsPerSource <= 0 {
		cfg.MaxConnsPerSource = min(max(cfg.MaxConns/10, 16), cfg.MaxConns)
	}
	if cfg.MaxKeepalives <= 0 {
		cfg.MaxKeepalives = 20
	}
	e := &Edge{cfg: cfg, clock: clock.OrSystem(cfg.Clock), log: cfg.Logger,
		streams: map[sipmsg.Flow]*edgeConn{}, byRemote: map[netip.AddrPort]sipmsg.Flow{},
		packets: map[netip.AddrPort]net.PacketConn{}, sources: map[netip.Prefix]int{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

// ServeStream accepts connections on ln until ctx ends or ln fails, and
// reads each in its own goroutine (t: sipmsg.TCP, or sipmsg.TLS to run TLS
// with EdgeConfig.TLS over them). It closes the connections it accepted
// before it returns; ln stays the caller's.
func (e *Edge) ServeStream(ctx context.Context, ln net.Listener, t sipmsg.Transport) error {
	if t == sipmsg.TLS && e.cfg.TLS == nil {
		return fmt.Errorf("%w: TLS listener without EdgeConfig.TLS", ErrConfig)
	}
	if t != sipmsg.TLS && t != sipmsg.TCP {
		return fmt.Errorf("%w: stream transport %v", ErrConfig, t)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var conns sync.WaitGroup
	defer conns.Wait()
	stop := context.AfterFunc(ctx, func() {
		if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
			_ = d.SetDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("outbound: accept %s: %w", t, err)
		}
		src, ok := e.admit(c)
		if !ok {
			_ = c.Close()
			continue
		}
		if t == sipmsg.TLS {
			c = tls.Server(c, e.cfg.TLS)
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer e.release(src)
			err := e.serveConn(ctx, c, t)
			e.log.Debug("outbound: connection closed", "remote", c.RemoteAddr(), "err", err)
		}()
	}
}

// admit counts connection c against MaxConns and MaxConnsPerSource; false:
// it is one too many, refused and counted. It returns c's source for
// release.
func (e *Edge) admit(c net.Conn) (netip.Prefix, bool) {
	src := sourceOf(callerconn.AddrPortOf(c.RemoteAddr()).Addr())
	if e.open.Add(1) > int64(e.cfg.MaxConns) {
		e.open.Add(-1)
		e.refused.Add(1)
		e.log.Warn("outbound: too many connections, refused", "remote", c.RemoteAddr(), "max", e.cfg.MaxConns)
		return src, false
	}
	e.mu.Lock()
	n := e.sources[src]
	if src.IsValid() && n >= e.cfg.MaxConnsPerSource {
		e.mu.Unlock()
		e.open.Add(-1)
		e.refused.Add(1)
		e.log.Warn("outbound: too many connections from one source, refused", "remote", c.RemoteAddr(), "source", src, "max", e.cfg.MaxConnsPerSource)
		return src, false
	}
	if src.IsValid() {
		e.sources[src] = n + 1
	}
	e.mu.Unlock()
	return src, true
}

// release ends what admit counted for a connection from src.
func (e *Edge) release(src netip.Prefix) {
	e.open.Add(-1)
	if !src.IsValid() {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sources[src] <= 1 {
		delete(e.sources, src)
	} else {
		e.sources[src]--
	}
}

// sourceOf is the source a connection from a counts against: the IPv4
// address, or the IPv6 /64; invalid (not counted) for an unknown address.
func sourceOf(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// serveConn reads one UA connection until it fails.
func (e *Edge) serveConn(ctx context.Context, c net.Conn, t sipmsg.Transport) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if tc, ok := c.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, e.cfg.FrameTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return fmt.Errorf("outbound: TLS handshake with %s: %w", c.RemoteAddr(), err)
		}
	}
	f := sipmsg.Flow{Remote: callerconn.AddrPortOf(c.RemoteAddr()), Local: callerconn.AddrPortOf(c.LocalAddr()), Transport: t}
	ec := &edgeConn{c: c}
	e.mu.Lock()
	e.streams[f] = ec
	e.byRemote[f.Remote] = f
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if e.streams[f] == ec {
			delete(e.streams, f)
			delete(e.byRemote, f.Remote)
		}
		e.mu.Unlock()
	}()
	s := sipmsg.NewStreamReader(c, sipmsg.StreamConfig{
		Max: e.cfg.MaxMessage, SetReadDeadline: c.SetReadDeadline, Pings: true,
		FrameTimeout: e.cfg.FrameTimeout, IdleTimeout: e.cfg.IdleTimeout,
	})
	var window time.Time
	n := 0
	for {
		kind, b, err := s.Next()
		if err != nil {
			return err
		}
		if kind == sipmsg.FrameMessage {
			e.cfg.Handle(ctx, f, b)
			continue
		}
		now := e.clock.Now()
		if now.Sub(window) >= time.Second {
			window, n = now, 0
		}
		if n++; n > e.cfg.MaxKeepalives {
			return fmt.Errorf("%w from %s", ErrFlood, f.Remote)
		}
		if kind == sipmsg.FramePing {
			if err := ec.write([]byte("\r\n"), e.cfg.FrameTimeout); err != nil {
				return err
			}
		}
	}
}

func (ec *edgeConn) write(b []byte, timeout time.Duration) error {
	ec.wmu.Lock()
	defer ec.wmu.Unlock()
	_ = ec.c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := ec.c.Write(b)
	return err
}

// ServePacket reads UDP socket conn until ctx ends or conn fails: STUN
// Binding requests are answered (RFC 5626 §4.4.2), keep-alive CRLFs
// dropped, SIP messages handed to Handle with a UDP flow. conn stays the
// caller's: it is read by internal/callerconn's loop, never closed, and
// left without a read deadline; Send uses it for UDP flows on its local
// address.
func (e *Edge) ServePacket(ctx context.Context, conn net.PacketConn) error {
	local := callerconn.AddrPortOf(conn.LocalAddr())
	e.mu.Lock()
	fam := udpFamily(local.Addr())
	e.packets[local] = conn
	if !e.udp[fam].IsValid() {
		e.udp[fam] = local
	}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.packets, local)
		if e.udp[fam] == local {
			e.udp[fam] = netip.AddrPort{}
			for a := range e.packets { // another socket of the family takes over
				if udpFamily(a.Addr()) == fam {
					e.udp[fam] = a
					break
				}
			}
		}
		e.mu.Unlock()
	}()
	var out []byte
	err := callerconn.Serve(ctx, conn, 65535, func(b []byte, src netip.AddrPort) {
		switch {
		case nat.IsSTUN(b):
			var err error
			if out, err = nat.AppendBindingResponse(out[:0], b, src, local); err == nil {
				_ = callerconn.WriteTo(conn, out, src)
			}
		case len(b) == 0 || b[0] == '\r' || b[0] == '\n' || b[0] == 0:
		default:
			e.cfg.Handle(ctx, sipmsg.Flow{Remote: src, Local: local, Transport: sipmsg.UDP}, b)
		}
	})
	if err != nil {
		return fmt.Errorf("outbound: read UDP %s: %w", local, err)
	}
	return nil
}

// Send writes b on flow f: over the UA's own connection for TCP and TLS
// (ErrFlowGone when it closed), from the edge's UDP socket on f.Local for
// UDP.
func (e *Edge) Send(f sipmsg.Flow, b []byte) error {
	e.mu.Lock()
	ec := e.streams[f]
	pc := e.packets[f.Local]
	e.mu.Unlock()
	switch {
	case f.Transport == sipmsg.UDP && pc != nil:
		return callerconn.WriteTo(pc, b, f.Remote)
	case f.Transport == sipmsg.UDP:
		return fmt.Errorf("%w: no UDP socket on %s", ErrFlowGone, f.Local)
	case ec == nil:
		return fmt.Errorf("%w: %s %s", ErrFlowGone, f.Transport, f.Remote)
	}
	if err := ec.write(b, e.cfg.FrameTimeout); err != nil {
		_ = ec.c.Close()
		return fmt.Errorf("%w: %s %s: %w", ErrFlowGone, f.Transport, f.Remote, err)
	}
	return nil
}

// FlowFor returns the flow to reach remote: its stream connection when it
// has one open to the edge (the UA's own connection, RFC 5626 §5.3 and RFC
// 5923), else UDP from the edge's first UDP socket of remote's address
// family (a dual-stack edge serves a socket of each), or, when it has none
// of that family, its first of the other (a socket bound to [::] reaches
// IPv4 too).
func (e *Edge) FlowFor(remote netip.AddrPort) sipmsg.Flow {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.byRemote[remote]; ok {
		return f
	}
	fam := udpFamily(remote.Addr())
	local := e.udp[fam]
	if !local.IsValid() {
		local = e.udp[1-fam]
	}
	return sipmsg.Flow{Remote: remote, Local: local, Transport: sipmsg.UDP}
}

// udpFamily is the index of a's address family in Edge.udp: 0 for IPv4
// (IPv4-mapped too), 1 for IPv6.
func udpFamily(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 0
	}
	return 1
}

// SendTo sends b to dst over FlowFor(dst).
func (e *Edge) SendTo(dst netip.AddrPort, b []byte) error { return e.Send(e.FlowFor(dst), b) }

// Has reports whether flow f is usable: an open stream connection, or a
// UDP flow from one of the edge's sockets.
func (e *Edge) Has(f sipmsg.Flow) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.Transport == sipmsg.UDP {
		return e.packets[f.Local] != nil
	}
	return e.streams[f] != nil
}

// Refused returns how many connections were closed at accept because
// MaxConns were open.
func (e *Edge) Refused() uint64 { return e.refused.Load() }

// Flows returns how many stream connections are open.
func (e *Edge) Flows() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.streams)
}

// Close closes the stream connection of flow f (tests, administrative
// kill); it reports whether there was one.
func (e *Edge) Close(f sipmsg.Flow) bool {
	e.mu.Lock()
	ec := e.streams[f]
	e.mu.Unlock()
	if ec == nil {
		return false
	}
	_ = ec.c.Close()
	return true
}

// AppendPath appends the Path value the edge adds to a REGISTER that came
// on flow f: "<sip:TOKEN@self;lr;ob>" with ob when the UA asked for
// outbound (RFC 5626 §5.1; without it the token still routes back).
func (e *Edge) AppendPath(dst []byte, f sipmsg.Flow, outbound bool) []byte {
	tok := sipmsg.AppendFlowToken(nil, e.cfg.Key, f)
	return sipmsg.AppendPathValue(dst, e.cfg.Self, tok, outbound)
}

// RouteFlow returns the flow named by the token in the user part of the
// top Route of request m (the Path the registrar turned into a Route, RFC
// 3327), and false when that Route is not the edge's or has no token.
// A token not made with the edge's key is an error.
func (e *Edge) RouteFlow(m *sipmsg.Message) (sipmsg.Flow, bool, error) {
	it := m.Values(sipmsg.HdrRoute)
	if !it.Next() {
		return sipmsg.Flow{}, false, nil
	}
	b := m.Bytes()
	na, err := sipmsg.ParseNameAddr(b, it.Span())
	if err != nil {
		return sipmsg.Flow{}, false, err
	}
	u, err := sipmsg.ParseURI(b, na.URI)
	if err != nil {
		return sipmsg.Flow{}, false, err
	}
	a, ok := u.Addr(b)
	port := u.Port
	if port == 0 {
		port = 5060
	}
	user := u.User.In(b)
	if !ok || a != e.cfg.Self.Addr() || port != int(e.cfg.Self.Port()) || len(user) == 0 {
		return sipmsg.Flow{}, false, nil
	}
	f, err := sipmsg.ParseFlowToken(e.cfg.Key, user)
	if err != nil {
		return sipmsg.Flow{}, false, fmt.Errorf("outbound: route token: %w", err)
	}
	return f, true, nil
}

// AppendFlowTimer appends the edge's Flow-Timer value in seconds ("25"),
// nothing when it has none.
func (e *Edge) AppendFlowTimer(dst []byte) []byte {
	if e.cfg.FlowTimer <= 0 {
		return dst
	}
	return strconv.AppendInt(dst, int64(e.cfg.FlowTimer/time.Second), 10)
}

// AppendFlowTimerTo appends response m to dst with a Flow-Timer header
// added when m is a 2xx to REGISTER that says Require: outbound and has
// none, and the edge has a FlowTimer (RFC 5626 §5.4: the edge tells the UA
// how often to keep its flow). added is false, and m appended unchanged,
// otherwise.
func (e *Edge) AppendFlowTimerTo(dst []byte, m *sipmsg.Message) (out []byte, added bool, err error) {
	var v [20]byte
	value, ok := e.AppendFlowTimerValue(v[:0], m)
	if !ok {
		return append(dst, m.Bytes()...), false, nil
	}
	out, err = sipmsg.AppendInsertTop(dst, m, sipmsg.HdrFlowTimer, value)
	return out, err == nil, err
}

// AppendFlowTimerValue appends the Flow-Timer value response m needs (see
// AppendFlowTimerTo) to dst and reports whether it needs one: for a proxy
// that forwards in one pass, as sipmsg.Fix.Insert.
func (e *Edge) AppendFlowTimerValue(dst []byte, m *sipmsg.Message) ([]byte, bool) {
	if e.cfg.FlowTimer <= 0 || m.IsRequest() || m.StatusCode()/100 != 2 || string(m.CSeqMethod()) != "REGISTER" ||
		!m.HasOptionTag(sipmsg.HdrRequire, sipmsg.OptionOutbound) || m.Index(sipmsg.HdrFlowTimer) >= 0 {
		return dst, false
	}
	return e.AppendFlowTimer(dst), true
}
