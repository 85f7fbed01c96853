package nat

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v2"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
)

// Default RFC 8489 retransmission parameters (section 6.2.1).
const (
	DefaultRTO = 500 * time.Millisecond
	DefaultRc  = 7
	DefaultRm  = 16
)

// ClientConfig configures a Client. The zero value works: RFC 8489 defaults,
// the system clock, no logging, and the client reading the conn itself.
type ClientConfig struct {
	// RTO is the initial retransmission timeout; it doubles after every
	// retransmission. Zero means DefaultRTO (500 ms).
	RTO time.Duration
	// Rc is how many requests a transaction sends at most. Zero means
	// DefaultRc (7).
	Rc int
	// Rm is how many initial RTOs the client waits after the last request
	// before the transaction fails. Zero means DefaultRm (16).
	Rm int
	// Clock times retransmissions; nil means the system clock.
	Clock clock.Clock
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// CallerReads says the caller owns the read loop of the conn and hands
	// every packet it reads to HandlePacket (SIP and STUN on one socket).
	// When false, the client reads the conn itself in a goroutine until
	// Close, and passes packets that are not its STUN answers to Unhandled.
	CallerReads bool
	// Unhandled receives, when the client reads the conn itself, every
	// packet that is not an answer to one of its transactions (SIP, RTP,
	// other STUN). b is only valid during the call. Nil drops them.
	Unhandled func(b []byte, from netip.AddrPort)
}

// BindingOptions are the per-request settings of BindingWith.
type BindingOptions struct {
	// ChangeIP and ChangePort set the CHANGE-REQUEST flags (RFC 5780
	// section 7.2, RFC 3489 section 11.2.4): the server answers from its
	// alternate address and/or port.
	ChangeIP, ChangePort bool
	// ResponsePort, when not zero, adds RESPONSE-PORT (RFC 5780 section
	// 7.5): the server sends the answer to this port at the request's
	// source address.
	ResponsePort uint16
	// From is the address the answer must come from. Zero means the server
	// for a plain request; with Change flags, any address that differs from
	// the server in the changed parts and equals it in the others.
	From netip.AddrPort
	// RTO and Attempts override the client's RTO and Rc for this request.
	RTO      time.Duration
	Attempts int
	// NoFingerprint leaves FINGERPRINT out of the request.
	NoFingerprint bool
}

// Response is what a Binding success response said.
type Response struct {
	// Mapped is the server-reflexive address: XOR-MAPPED-ADDRESS, or
	// MAPPED-ADDRESS from an RFC 3489 server.
	Mapped netip.AddrPort `json:"mapped"`
	// XOR tells whether Mapped came from XOR-MAPPED-ADDRESS.
	XOR bool `json:"xor"`
	// Other is OTHER-ADDRESS (RFC 5780), or CHANGED-ADDRESS from an RFC
	// 3489 server (then Legacy is set); zero when the server sent neither.
	Other netip.AddrPort `json:"other,omitzero"`
	// Legacy tells whether Other came from RFC 3489 CHANGED-ADDRESS.
	Legacy bool `json:"legacy"`
	// Origin is RESPONSE-ORIGIN (or RFC 3489 SOURCE-ADDRESS), zero if absent.
	Origin netip.AddrPort `json:"origin,omitzero"`
	// From is the address the response came from.
	From netip.AddrPort `json:"from"`
	// RTT is the time from the latest transmission of the request to the
	// response (so a retransmitted request does not inflate it; Karn's
	// ambiguity makes it a lower bound then).
	RTT time.Duration `json:"rtt"`
}

// Client runs STUN Binding transactions (RFC 8489) over a caller-owned
// net.PacketConn, so the binding it finds is that socket's own. Any number of
// transactions may be in flight at once; all methods are safe for concurrent
// use. Make one with NewClient.
type Client struct {
	conn  net.PacketConn
	cfg   ClientConfig
	clock clock.Clock
	log   *slog.Logger

	mu     sync.Mutex
	txs    map[[12]byte]*transaction
	free   []*transaction
	rng    *rand.ChaCha8
	closed bool

	loop *callerconn.Loop // nil when the caller reads
}

// NewClient returns a client that sends on conn. Unless cfg.CallerReads is
// set it starts reading conn at once; Close stops that and leaves conn open.
func NewClient(conn net.PacketConn, cfg ClientConfig) *Client {
	if cfg.RTO <= 0 {
		cfg.RTO = DefaultRTO
	}
	if cfg.Rc <= 0 {
		cfg.Rc = DefaultRc
	}
	if cfg.Rm <= 0 {
		cfg.Rm = DefaultRm
	}
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on supported platforms
	c := &Client{
		conn:  conn,
		cfg:   cfg,
		clock: clock.OrSystem(cfg.Clock),
		log:   loggerOrDiscard(cfg.Logger),
		txs:   make(map[[12]byte]*transaction),
		rng:   rand.NewChaCha8(seed),
	}
	if !cfg.CallerReads {
		c.loop = callerconn.Start(conn, maxMessageSize, callerconn.Claim(c.HandlePacket, cfg.Unhandled), c.readFailed)
	}
	return c
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Binding sends a Binding request to server and returns the mapped
// (server-reflexive) address of the client's conn.
func (c *Client) Binding(ctx context.Context, server netip.AddrPort) (netip.AddrPort, error) {
	r, err := c.BindingWith(ctx, server, BindingOptions{})
	return r.Mapped, err
}

// BindingWith sends a Binding request with the given options to server and
// returns the whole response. It retransmits as RFC 8489 says until an answer
// from the expected source arrives, the attempts run out (ErrNoResponse), or
// ctx ends (ErrNoResponse and ctx.Err()). An error response gives a
// *ServerError, an unusable answer ErrMalformed.
func (c *Client) BindingWith(ctx context.Context, server netip.AddrPort, o BindingOptions) (Response, error) {
	return c.transact(ctx, server, o, c.conn, false, nil)
}

// HandlePacket gives the client a packet read from its conn. It returns true
// when the packet was STUN meant for the client (an answer to one of its
// transactions, a late or duplicate answer, or its own hairpinned request)
// and so consumed; false means the packet is the caller's (SIP, or a STUN
// request from a peer). b is not retained. HandlePacket does not allocate.
func (c *Client) HandlePacket(b []byte, from netip.AddrPort) bool {
	if !IsSTUN(b) {
		return false
	}
	cls := classOf(b)
	if cls == stun.ClassIndication {
		return false
	}
	var id [12]byte
	copy(id[:], b[8:20])
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())

	c.mu.Lock()
	tx := c.txs[id]
	if tx == nil || tx.finished {
		c.mu.Unlock()
		return cls != stun.ClassRequest
	}
	if cls == stun.ClassRequest {
		if !tx.echo {
			c.mu.Unlock()
			return false
		}
		tx.res = Response{Mapped: from, From: from, RTT: c.clock.Now().Sub(tx.last)}
		_ = c.finishLocked(tx, nil)
		c.mu.Unlock()
		return true
	}
	if tx.echo || !(tx.accepts(from) || cls == stun.ClassErrorResponse && from == tx.server) {
		srv := tx.server
		c.mu.Unlock()
		if c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.Debug("stun: dropped answer from unexpected source", "from", from, "server", srv)
		}
		return true
	}
	err := tx.decode(b, from)
	if err != nil {
		// Keep waiting: a good answer may still come; remember why this one failed.
		tx.malformed = err
		c.mu.Unlock()
		if c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.Debug("stun: malformed answer", "from", from, "err", err)
		}
		return true
	}
	tx.res.RTT = c.clock.Now().Sub(tx.last)
	_ = c.finishLocked(tx, tx.decodeErr)
	c.mu.Unlock()
	return true
}

func classOf(b []byte) stun.MessageClass {
	t := uint16(b[0])<<8 | uint16(b[1])
	return stun.MessageClass((t>>4)&1 | (t>>7)&2)
}

// Close fails the transactions in flight with ErrClosed and, when the client
// reads the conn itself, stops reading: it sets a read deadline in the past to
// wake the reader, waits for it, then clears the deadline again. Close never
// closes the conn, which stays the caller's.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, tx := range c.txs {
		_ = c.finishLocked(tx, ErrClosed)
	}
	c.mu.Unlock()
	if c.loop != nil {
		c.loop.Stop()
	}
	return nil
}

// readFailed fails the client when its read loop ends on an error.
func (c *Client) readFailed(err error) {
	c.log.Debug("stun: read loop ends", "err", err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, tx := range c.txs {
		_ = c.finishLocked(tx, fmt.Errorf("read: %w", err))
	}
}
