package nat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/stun/v2"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
)

// ServerConfig configures a Server. Only Primary is required. The sockets
// must be bound to specific addresses (not 0.0.0.0), since the server
// advertises them in OTHER-ADDRESS and RESPONSE-ORIGIN; the caller creates
// and closes them.
type ServerConfig struct {
	// Primary is the socket on the primary address and primary port.
	Primary net.PacketConn
	// AltPort is the socket on the primary address and the alternate port.
	AltPort net.PacketConn
	// AltAddr is the socket on the alternate address and the primary port.
	AltAddr net.PacketConn
	// AltBoth is the socket on the alternate address and alternate port.
	// With all four sockets the server is a full RFC 5780 server and sends
	// OTHER-ADDRESS; with fewer it answers CHANGE-REQUEST only when it has
	// the socket asked for (else error 420) and sends no OTHER-ADDRESS.
	AltBoth net.PacketConn
	// Rate is the number of requests per second one source IP address may
	// make, and Burst how many it may make at once. Zero means 50 and 200.
	// Requests over the limit are dropped and counted.
	Rate  float64
	Burst int
	// MaxSources bounds the rate limiter's table of source addresses; zero
	// means 65536.
	MaxSources int
	// TotalRate bounds the requests per second answered for all sources
	// together (with a burst of one second's worth), so that a flood with
	// many spoofed sources cannot multiply the traffic the server reflects;
	// zero means 20000.
	TotalRate float64
	// Clock is used for rate limiting; nil means the system clock.
	Clock clock.Clock
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// MaxAnswerSize is the largest answer a Server sends to a request without
// PADDING (which is answered by at most its own size, RFC 5780 §7.6): header,
// three IPv6 address attributes and FINGERPRINT.
const MaxAnswerSize = 20 + 3*24 + 8

// ServerStats counts what a Server did. Every packet read is counted once in
// Responses, Errors, Malformed, Ignored or RateLimited.
type ServerStats struct {
	Responses   uint64 `json:"responses"`    // success responses sent
	Errors      uint64 `json:"errors"`       // error responses sent (400, 420)
	Malformed   uint64 `json:"malformed"`    // packets dropped as not STUN or broken
	Ignored     uint64 `json:"ignored"`      // well-formed STUN that is not a Binding request
	RateLimited uint64 `json:"rate_limited"` // requests dropped by the per-source limit
}

// Server is a STUN server for NAT behaviour discovery (RFC 5780) that
// also answers RFC 3489 clients. Make one with NewServer, run it with Serve.
//
// A UDP server answers spoofed sources, so it is a reflector; the server
// bounds what it reflects: it answers only to the request's source address
// (RESPONSE-PORT changes only the port), one packet per request, of at most
// MaxAnswerSize bytes with only the attributes the request needs (a bare
// 20-byte IPv4 request gets 44 bytes, 2.2x; the worst case, IPv6 with all
// four sockets, 92 bytes, 4.6x). One victim address receives at most Burst
// answers at once and Rate per second after that, all victims together at
// most TotalRate per second; malformed packets are dropped and counted.
type Server struct {
	cfg     ServerConfig
	conns   [4]net.PacketConn // index: bit0 = alternate port, bit1 = alternate address
	addrs   [4]netip.AddrPort
	full    bool
	clock   clock.Clock
	log     *slog.Logger
	limiter limiter

	stats struct {
		responses, errors, malformed, ignored, rateLimited atomic.Uint64
	}

	mu      sync.Mutex
	closed  bool
	serving bool
	stop    chan struct{}       // closed by Close
	loops   [4]*callerconn.Loop // Serve's readers, by socket
}

// NewServer checks cfg and returns a server; it does not read yet.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Primary == nil {
		return nil, fmt.Errorf("server needs a primary socket: %w", ErrConfig)
	}
	s := &Server{cfg: cfg, clock: clock.OrSystem(cfg.Clock), log: loggerOrDiscard(cfg.Logger), stop: make(chan struct{})}
	s.conns = [4]net.PacketConn{cfg.Primary, cfg.AltPort, cfg.AltAddr, cfg.AltBoth}
	for i, c := range s.conns {
		if c == nil {
			continue
		}
		ap := callerconn.AddrPortOf(c.LocalAddr())
		if !ap.IsValid() || ap.Addr().IsUnspecified() {
			return nil, fmt.Errorf("server socket %d bound to %v: needs a specific address: %w", i, c.LocalAddr(), ErrConfig)
		}
		s.addrs[i] = ap
	}
	p := s.addrs[0]
	check := func(i int, wantAddr netip.Addr, wantPort uint16) error {
		if s.conns[i] == nil {
			return nil
		}
		a := s.addrs[i]
		if wantAddr.IsValid() && a.Addr() != wantAddr || wantPort != 0 && a.Port() != wantPort {
			return fmt.Errorf("server socket %v does not fit primary %v: %w", a, p, ErrConfig)
		}
		return nil
	}
	altPort, altAddr := s.addrs[1].Port(), s.addrs[2].Addr()
	if s.conns[3] != nil {
		altPort, altAddr = s.addrs[3].Port(), s.addrs[3].Addr()
	}
	for _, err := range []error{
		check(1, p.Addr(), 0), check(2, netip.Addr{}, p.Port()),
		check(3, altAddr, altPort),
	} {
		if err != nil {
			return nil, err
		}
	}
	if s.conns[1] != nil && s.addrs[1].Port() == p.Port() ||
		s.conns[2] != nil && s.addrs[2].Addr() == p.Addr() {
		return nil, fmt.Errorf("server alternate socket equals primary %v: %w", p, ErrConfig)
	}
	s.full = s.conns[1] != nil && s.conns[2] != nil && s.conns[3] != nil
	rate, burst := cfg.Rate, cfg.Burst
	if rate <= 0 {
		rate = 50
	}
	if burst <= 0 {
		burst = 200
	}
	maxSrc := cfg.MaxSources
	if maxSrc <= 0 {
		maxSrc = 65536
	}
	total := cfg.TotalRate
	if total <= 0 {
		total = 20000
	}
	s.limiter = limiter{rate: rate, burst: float64(burst), max: maxSrc, m: make(map[netip.Addr]*bucket), totalRate: total}
	return s, nil
}

// Addrs returns the addresses the server answers on, primary first; the
// ones it has no socket for are zero.
func (s *Server) Addrs() [4]netip.AddrPort { return s.addrs }

// Stats returns the counters so far.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Responses:   s.stats.responses.Load(),
		Errors:      s.stats.errors.Load(),
		Malformed:   s.stats.malformed.Load(),
		Ignored:     s.stats.ignored.Load(),
		RateLimited: s.stats.rateLimited.Load(),
	}
}

// Serve reads all the server's sockets and answers requests until ctx ends,
// Close is called, or one socket fails or is closed by the caller (then the
// other readers stop too, so none is left behind). It returns nil on Close,
// ctx or a closed socket, else the first read error that is not a timeout.
// Call it once.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	if s.serving {
		s.mu.Unlock()
		return fmt.Errorf("server already serving: %w", ErrConfig)
	}
	s.serving = true
	failed := make(chan struct{}) // closed when the first socket fails
	var once sync.Once
	var first error
	for i, c := range s.conns {
		if c == nil {
			continue
		}
		var out stun.Message
		out.Raw = make([]byte, 0, 128)
		s.loops[i] = callerconn.Start(c, maxMessageSize,
			func(b []byte, from netip.AddrPort) { s.handle(i, b, from, &out) },
			func(err error) {
				once.Do(func() {
					if !errors.Is(err, net.ErrClosed) {
						first = fmt.Errorf("stun server %v: %w", s.addrs[i], err)
					}
					close(failed)
				})
			})
	}
	loops := s.loops
	s.mu.Unlock()
	select {
	case <-failed: // stop the other readers too
	case <-s.stop:
	}
	for _, l := range loops {
		if l != nil {
			l.Stop()
		}
	}
	return first
}

// Close stops Serve: it sets a past read deadline on the sockets to wake the
// readers, waits for them and clears the deadline. The sockets stay open.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		if l != nil {
			l.Stop()
		}
	}
	return nil
}

// handle answers one packet that arrived on socket idx.
func (s *Server) handle(idx int, b []byte, from netip.AddrPort, out *stun.Message) {
	dst, sock, ok := s.respond(idx, b, from, out)
	if !ok {
		return
	}
	if err := callerconn.WriteTo(s.conns[sock], out.Raw, dst); err != nil {
		s.log.Debug("stun server: send failed", "to", dst, "err", err)
	}
}

// respond builds the answer to b into out. It returns where to send it and
// from which socket, or false when b is dropped. It counts everything.
func (s *Server) respond(idx int, b []byte, from netip.AddrPort, out *stun.Message) (netip.AddrPort, int, bool) {
	req, err := parseRequest(b)
	if err != nil {
		if errors.Is(err, errNotBindingRequest) {
			s.stats.ignored.Add(1)
		} else {
			s.stats.malformed.Add(1)
		}
		return netip.AddrPort{}, 0, false
	}
	if !from.IsValid() || from.Port() == 0 {
		s.stats.malformed.Add(1)
		return netip.AddrPort{}, 0, false
	}
	if !s.limiter.allow(from.Addr(), s.clock.Now()) {
		s.stats.rateLimited.Add(1)
		return netip.AddrPort{}, 0, false
	}
	if req.unknown != 0 {
		s.buildError(out, &req, 420, "Unknown Attribute", req.unknown)
		s.stats.errors.Add(1)
		return from, idx, true
	}
	sock := idx
	if req.changeIP {
		sock ^= 2
	}
	if req.changePort {
		sock ^= 1
	}
	if s.conns[sock] == nil {
		s.buildError(out, &req, 420, "Unknown Attribute", uint16(stun.AttrChangeRequest))
		s.stats.errors.Add(1)
		return from, idx, true
	}
	dst := from
	if req.responsePort != 0 {
		// RESPONSE-PORT changes only the port: the answer still goes to
		// the address the request came from, never elsewhere.
		dst = netip.AddrPortFrom(from.Addr(), req.responsePort)
	}
	s.buildSuccess(out, &req, from, s.addrs[sock])
	s.stats.responses.Add(1)
	return dst, sock, true
}

var errNotBindingRequest = errors.New("not a binding request")

// stunRequest is what the server reads from a request.
type stunRequest struct {
	id           [16]byte // RFC 3489 transaction ID: cookie + RFC 8489 ID
	classic      bool     // no magic cookie: an RFC 3489 client
	changeIP     bool
	changePort   bool
	responsePort uint16
	fingerprint  bool
	padding      bool   // PADDING present: pad the answer up to size
	size         int    // the request's size
	unknown      uint16 // first unknown comprehension-required attribute
}

// parseRequest checks that b is a Binding request and reads the attributes
// the server acts on. It accepts RFC 3489 requests (no magic cookie), never
// panics, and reads nothing beyond len(b).
func parseRequest(b []byte) (stunRequest, error) {
	var r stunRequest
	if len(b) < headerSize || b[0]&0xC0 != 0 {
		return r, ErrNotSTUN
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n%4 != 0 || headerSize+n != len(b) {
		return r, fmt.Errorf("length %d for %d bytes: %w", n, len(b), ErrMalformed)
	}
	r.classic = binary.BigEndian.Uint32(b[4:8]) != magicCookie
	r.size = len(b)
	copy(r.id[:], b[4:20])
	if t := binary.BigEndian.Uint16(b[0:2]); t != 0x0001 {
		return r, errNotBindingRequest
	}
	attrs := b[headerSize:]
	for len(attrs) > 0 {
		if len(attrs) < attrHeaderSize {
			return r, fmt.Errorf("attribute header: %w", ErrMalformed)
		}
		t := stun.AttrType(binary.BigEndian.Uint16(attrs[0:2]))
		l := int(binary.BigEndian.Uint16(attrs[2:4]))
		padded := (l + 3) &^ 3
		if len(attrs) < attrHeaderSize+padded {
			return r, fmt.Errorf("attribute %#04x length %d: %w", uint16(t), l, ErrMalformed)
		}
		v := attrs[attrHeaderSize : attrHeaderSize+l]
		if r.fingerprint {
			return r, fmt.Errorf("attribute after FINGERPRINT: %w", ErrMalformed)
		}
		switch t {
		case stun.AttrChangeRequest:
			if l != 4 {
				return r, fmt.Errorf("CHANGE-REQUEST length %d: %w", l, ErrMalformed)
			}
			r.changeIP = v[3]&changeIPFlag != 0
			r.changePort = v[3]&changePortFlag != 0
		case stun.AttrResponsePort:
			if l != 4 {
				return r, fmt.Errorf("RESPONSE-PORT length %d: %w", l, ErrMalformed)
			}
			r.responsePort = binary.BigEndian.Uint16(v[0:2])
			if r.responsePort == 0 {
				return r, fmt.Errorf("RESPONSE-PORT 0: %w", ErrMalformed)
			}
		case stun.AttrFingerprint:
			if l != 4 {
				return r, fmt.Errorf("FINGERPRINT length %d: %w", l, ErrMalformed)
			}
			off := len(b) - len(attrs)
			want := crc32.ChecksumIEEE(b[:off]) ^ fingerprintXOR
			if binary.BigEndian.Uint32(v) != want {
				return r, fmt.Errorf("fingerprint mismatch: %w", ErrMalformed)
			}
			r.fingerprint = true
		case stun.AttrPadding:
			r.padding = true
		default:
			if uint16(t) < 0x8000 && r.unknown == 0 {
				r.unknown = uint16(t)
			}
		}
		attrs = attrs[attrHeaderSize+padded:]
	}
	return r, nil
}

// buildSuccess writes the Binding success response for req. RFC 5389+
// clients get XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS when the
// server has all four sockets, and FINGERPRINT if they sent one; RFC 3489
// clients get MAPPED-ADDRESS, SOURCE-ADDRESS and CHANGED-ADDRESS.
func (s *Server) buildSuccess(out *stun.Message, req *stunRequest, mapped, origin netip.AddrPort) {
	s.header(out, req, stun.BindingSuccess)
	var v [20]byte
	if req.classic {
		out.Add(stun.AttrMappedAddress, appendAddrValue(v[:0], mapped, false, nil))
		out.Add(attrSourceAddr, appendAddrValue(v[:0], origin, false, nil))
		if s.full {
			out.Add(attrChangedAddr, appendAddrValue(v[:0], s.addrs[3], false, nil))
		}
		s.finish(out, req)
		return
	}
	out.Add(stun.AttrXORMappedAddress, appendAddrValue(v[:0], mapped, true, req.id[4:]))
	out.Add(stun.AttrResponseOrigin, appendAddrValue(v[:0], origin, false, nil))
	if s.full {
		out.Add(stun.AttrOtherAddress, appendAddrValue(v[:0], s.addrs[3], false, nil))
	}
	s.finish(out, req)
}

func (s *Server) buildError(out *stun.Message, req *stunRequest, code int, reason string, unknown uint16) {
	s.header(out, req, stun.BindingError)
	var v [4 + 32]byte
	v[2], v[3] = byte(code/100), byte(code%100)
	n := copy(v[4:], reason)
	out.Add(stun.AttrErrorCode, v[:4+n])
	if code == 420 {
		var u [2]byte
		binary.BigEndian.PutUint16(u[:], unknown)
		out.Add(stun.AttrUnknownAttributes, u[:])
	}
	s.finish(out, req)
}

func (s *Server) header(out *stun.Message, req *stunRequest, t stun.MessageType) {
	out.Reset()
	out.Type = t
	copy(out.TransactionID[:], req.id[4:])
	out.WriteHeader()
	copy(out.Raw[4:8], req.id[:4]) // RFC 3489: echo all 128 bits
}

// finish adds PADDING and FINGERPRINT as the request asks. With PADDING
// (RFC 5780 section 7.6) the answer grows to the request's size, never
// beyond it, so padding cannot amplify.
func (s *Server) finish(out *stun.Message, req *stunRequest) {
	fp := req.fingerprint && !req.classic
	if req.padding && !req.classic {
		tail := 0
		if fp {
			tail = 8
		}
		if n := req.size - len(out.Raw) - tail - attrHeaderSize; n > 0 {
			var zero [maxMessageSize]byte
			out.Add(stun.AttrPadding, zero[:n&^3])
		}
	}
	if fp {
		addFingerprint(out)
	}
}
