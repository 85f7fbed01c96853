package rtpengine

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
)

// Defaults of ClientConfig.
const (
	DefaultRTO   = 500 * time.Millisecond // first wait for an answer; doubles on every retransmission
	DefaultTries = 3                      // sends per request: 0.5 s + 1 s + 2 s before ErrTimeout
	// MaxMessageSize bounds what the client reads and decodes: an ng
	// message is one UDP datagram.
	MaxMessageSize = 65535
	// maxFree bounds the transactions (and their buffers) kept for reuse.
	maxFree = 64
)

// ClientConfig configures a Client. The zero value works.
type ClientConfig struct {
	// RTO is the first wait for an answer; it doubles after every
	// retransmission. Zero means DefaultRTO.
	RTO time.Duration
	// Tries is how many times a request is sent before ErrTimeout. Zero
	// means DefaultTries. rtpengine answers a retransmission from its
	// cookie cache, so a retransmitted offer is not executed twice.
	Tries int
	// CallerReads says the caller owns the read loop of the conn and hands
	// every packet it reads to HandlePacket. When false, the client reads
	// the conn itself until Close and passes what is not an ng reply to
	// Unhandled.
	CallerReads bool
	// Unhandled receives, when the client reads the conn itself, every
	// packet that is not one of its replies. b is only valid during the
	// call. Nil drops them.
	Unhandled func(b []byte, from netip.AddrPort)
	// Clock times retransmissions; nil means the system clock.
	Clock clock.Clock
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

// Client speaks rtpengine's ng control protocol over a UDP socket the
// caller owns: every request is "<cookie> <bencode dictionary>", the reply
// carries the same cookie, and a request without answer is retransmitted
// with the same cookie. One Client serves any number of rtpengine instances
// (the server is an argument of every call) and is safe for concurrent use.
type Client struct {
	conn   net.PacketConn
	cfg    ClientConfig
	clock  clock.Clock
	log    *slog.Logger
	prefix string // cookie prefix, unique per client

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]*txn
	free    []*txn
	closed  bool
	err     error // why the client closed

	loop *callerconn.Loop // nil when the caller reads
}

type txn struct {
	c      *Client
	id     uint64
	server netip.AddrPort
	req    []byte
	reply  []byte
	got    bool
	done   chan struct{}
	tick   chan uint64
	timer  clock.Timer
	dec    Decoder
}

// fire is the retransmission timer's function: it tells the waiting
// request which transaction's timer ran.
func (t *txn) fire() {
	t.c.mu.Lock()
	id := t.id
	t.c.mu.Unlock()
	select {
	case t.tick <- id:
	default:
	}
}

// NewClient returns a client that sends on conn. Unless cfg.CallerReads is
// set it starts reading conn at once; Close stops that and leaves conn open.
func NewClient(conn net.PacketConn, cfg ClientConfig) *Client {
	if cfg.RTO <= 0 {
		cfg.RTO = DefaultRTO
	}
	if cfg.Tries <= 0 {
		cfg.Tries = DefaultTries
	}
	var r [4]byte
	_, _ = crand.Read(r[:]) // never fails on supported platforms
	c := &Client{
		conn:    conn,
		cfg:     cfg,
		clock:   clock.OrSystem(cfg.Clock),
		log:     cfg.Logger,
		prefix:  hex.EncodeToString(r[:]) + "_",
		pending: make(map[uint64]*txn),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if !cfg.CallerReads {
		c.loop = callerconn.Start(conn, MaxMessageSize, callerconn.Claim(c.HandlePacket, cfg.Unhandled), c.readFailed)
	}
	return c
}

// Ping asks server whether it is alive.
func (c *Client) Ping(ctx context.Context, server netip.AddrPort) error {
	_, err := c.Do(ctx, server, nil, &Request{Command: Ping})
	return err
}

// Do sends r to the rtpengine at server and waits for its reply,
// retransmitting as ClientConfig says. The reply's SDP is appended to sdp
// (pass a reused buffer to avoid allocating). Errors: ErrTimeout when no
// answer came, an *ErrorReply (ErrRejected) when rtpengine refused,
// ErrMalformedReply for an unusable answer, ErrClosed, or ctx's error; all
// wrapped with the command and the server.
func (c *Client) Do(ctx context.Context, server netip.AddrPort, sdp []byte, r *Request) (Reply, error) {
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	t, err := c.begin(server, r)
	if err != nil {
		return Reply{SDP: sdp}, fmt.Errorf("rtpengine %s %s: %w", r.Command, server, err)
	}
	defer c.end(t)
	rep, err := c.wait(ctx, t, r.Command, sdp)
	if err != nil {
		return rep, fmt.Errorf("rtpengine %s %s: %w", r.Command, server, err)
	}
	return rep, nil
}

func (c *Client) begin(server netip.AddrPort, r *Request) (*txn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.closedErrLocked()
	}
	var t *txn
	if n := len(c.free); n > 0 {
		t, c.free = c.free[n-1], c.free[:n-1]
	} else {
		t = &txn{c: c, done: make(chan struct{}, 1), tick: make(chan uint64, 1)}
	}
	c.seq++
	t.id, t.server, t.got = c.seq, server, false
	t.req = AppendRequest(appendCookie(t.req[:0], c.prefix, t.id), nil, r)
	c.pending[t.id] = t
	return t, nil
}

func (c *Client) closedErrLocked() error {
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

func (c *Client) end(t *txn) {
	if t.timer != nil {
		t.timer.Stop()
	}
	c.mu.Lock()
	delete(c.pending, t.id)
	t.id = 0
	select {
	case <-t.done:
	default:
	}
	select {
	case <-t.tick:
	default:
	}
	if len(c.free) < maxFree {
		c.free = append(c.free, t)
	}
	c.mu.Unlock()
}

func (c *Client) wait(ctx context.Context, t *txn, cmd Command, sdp []byte) (Reply, error) {
	rto := c.cfg.RTO
	for try := 1; ; try++ {
		if err := c.send(t.req, t.server); err != nil {
			return Reply{SDP: sdp}, fmt.Errorf("send: %w", err)
		}
		if t.timer == nil {
			t.timer = c.clock.AfterFunc(rto, t.fire)
		} else {
			t.timer.Reset(rto)
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return Reply{SDP: sdp}, ctx.Err()
			case <-t.done:
				c.mu.Lock()
				if !t.got { // woken by Close
					err := c.closedErrLocked()
					c.mu.Unlock()
					return Reply{SDP: sdp}, err
				}
				c.mu.Unlock()
				// t.reply is ours now: HandlePacket writes it only once
				body := t.reply[bytes.IndexByte(t.reply, ' ')+1:]
				return ParseReply(&t.dec, cmd, body, sdp)
			case id := <-t.tick:
				if id != t.id {
					continue // a stale timer of an earlier use
				}
				waiting = false
			}
		}
		if try >= c.cfg.Tries {
			return Reply{SDP: sdp}, fmt.Errorf("%w after %d tries", ErrTimeout, try)
		}
		rto *= 2
		c.log.Debug("rtpengine: retransmit", "command", cmd, "server", t.server, "try", try+1)
	}
}

// HandlePacket gives the client a packet read from its conn. It returns true
// when the packet is an ng reply carrying one of this client's cookies
// (consumed, also when late or duplicated) and false otherwise. b is not
// retained; HandlePacket does not allocate once its buffers have grown.
func (c *Client) HandlePacket(b []byte, from netip.AddrPort) bool {
	sp := bytes.IndexByte(b, ' ')
	if sp <= len(c.prefix) || string(b[:len(c.prefix)]) != c.prefix {
		return false
	}
	id, err := strconv.ParseUint(string(b[len(c.prefix):sp]), 36, 64)
	if err != nil {
		return false
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.pending[id]
	if t == nil || t.got || t.server != from {
		return true
	}
	t.reply = append(t.reply[:0], b...)
	t.got = true
	select {
	case t.done <- struct{}{}:
	default:
	}
	return true
}

// Close fails the requests in flight with ErrClosed and, when the client
// reads the conn itself, stops reading: it sets a read deadline in the past
// to wake the reader, waits for it, then clears the deadline. Close never
// closes the conn, which stays the caller's.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.failLocked(ErrClosed)
	c.mu.Unlock()
	if c.loop != nil {
		c.loop.Stop()
	}
	return nil
}

func (c *Client) failLocked(err error) {
	c.closed = true
	c.err = err
	for _, t := range c.pending {
		select {
		case t.done <- struct{}{}:
		default:
		}
	}
}

func (c *Client) send(b []byte, to netip.AddrPort) error {
	return callerconn.WriteTo(c.conn, b, to)
}

// readFailed closes the client when its read loop ends on an error.
func (c *Client) readFailed(err error) {
	c.log.Debug("rtpengine: read loop ends", "err", err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.failLocked(fmt.Errorf("%w: read: %w", ErrClosed, err))
	}
}
