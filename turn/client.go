package turn

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v2"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/sipmsg"
)

// Client is a TURN client (RFC 8656, and RFC 5766 servers) with one UDP
// allocation. Over UDP it shares the caller's media socket: the socket keeps
// carrying STUN keep-alives and direct RTP, and the client only claims the
// server's packets. All methods are safe for concurrent use.
type Client struct {
	cfg   Config
	clock clock.Clock
	log   *slog.Logger

	pc     net.PacketConn   // UDP: the caller's socket
	loop   *callerconn.Loop // UDP: reads pc unless the caller does
	stream bool             // TCP or TLS
	dialFn func(ctx context.Context, network, addr string) (net.Conn, error)
	dialMu sync.Mutex // serializes redials of the stream

	wmu  sync.Mutex // one writer at a time; guards wbuf and conn
	wbuf []byte
	conn net.Conn // the stream (TCP, TLS), nil over UDP
	// wdeadline is the stream's write deadline, moved on by writes: a
	// write the stream does not take within StreamWriteTimeout gives it up.
	wdeadline time.Time

	mu         sync.Mutex
	closed     bool
	txs        map[[12]byte]*tx
	realm      string
	nonce      string
	integrity  stun.MessageIntegrity
	alloc      Allocation
	ticket     []byte // MOBILITY-TICKET (RFC 8016), nil without mobility
	noMobility bool   // the server refused mobility (405): not asked again
	allocated  bool
	expires    time.Time
	peers      map[netip.AddrPort]*peer
	channels   []netip.AddrPort // by channel number - minChannel, numbers given in order
	nextCh     uint16
	// sendID is the transaction ID of Send indications, counted up from a
	// random start.
	sendID     [12]byte
	refresh    clock.Timer
	perms      clock.Timer
	keep       clock.Timer
	recovery   clock.Timer
	recovering bool
	backoff    time.Duration
	readDone   chan struct{}  // the stream's reader has ended
	bg         sync.WaitGroup // background requests (binds, refreshes)
	events     sync.Mutex     // one OnEvent call at a time
}

// peer is a remote media address with a permission, and a channel once
// bound.
type peer struct {
	ch      uint16
	bound   bool // the channel is usable (ChannelBind succeeded)
	pending bool // a bind is under way
}

// New returns a client that talks to cfg.Server over conn, the caller's
// (media) UDP socket. Unless cfg.CallerReads is set it reads conn until
// Close. Call Allocate next. Close never closes conn.
func New(conn net.PacketConn, cfg Config) (*Client, error) {
	if cfg.Transport != sipmsg.TransportUnknown && cfg.Transport != UDP {
		return nil, fmt.Errorf("%w: New is for UDP; use Dial for %s", ErrConfig, cfg.Transport)
	}
	cfg.Transport = UDP
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	c.pc = conn
	if !cfg.CallerReads {
		c.loop = callerconn.Start(conn, maxFrameSize, c.handleRead, func(err error) {
			c.log.Debug("turn: read loop ends", "err", err)
		})
	}
	return c, nil
}

// Dial connects to cfg.Server over cfg.Transport (TCP or TLS) and returns a
// client that reads the stream itself (relayed data goes to cfg.OnData).
// The stream is the client's: Close closes it, and a broken stream is
// dialled again when the allocation is recovered. Call Allocate next.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Transport != TCP && cfg.Transport != TLS {
		return nil, fmt.Errorf("%w: Dial is for TCP and TLS, not %q", ErrConfig, cfg.Transport)
	}
	if cfg.Transport == TLS && cfg.DialContext == nil {
		return nil, fmt.Errorf("%w: TLS needs Config.DialContext to make TLS connections, e.g. (&tls.Dialer{Config: c}).DialContext", ErrConfig)
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	c.stream = true
	c.dialFn = cfg.DialContext
	if c.dialFn == nil {
		// set here, not in dial: a UA that only uses New links no net.Dialer
		c.dialFn = (&net.Dialer{}).DialContext
	}
	if err := c.dial(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func newClient(cfg Config) (*Client, error) {
	if !cfg.Server.IsValid() {
		return nil, fmt.Errorf("%w: Config.Server is not set", ErrConfig)
	}
	if cfg.Username == "" {
		return nil, fmt.Errorf("%w: Config.Username is not set", ErrConfig)
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.PermissionRefresh <= 0 {
		cfg.PermissionRefresh = DefaultPermissionRefresh
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.RTO <= 0 {
		cfg.RTO = DefaultRTO
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	cfg.MaxPeers = min(cfg.MaxPeers, maxChannel-minChannel+1) // one channel each
	cfg.Server = netip.AddrPortFrom(cfg.Server.Addr().Unmap(), cfg.Server.Port())
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, clock: clock.OrSystem(cfg.Clock), log: log,
		txs: make(map[[12]byte]*tx), peers: make(map[netip.AddrPort]*peer), nextCh: minChannel}
	_, _ = crand.Read(c.sendID[:])
	return c, nil
}

// dial (re)connects the stream and starts its reader.
func (c *Client) dial(ctx context.Context) error {
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	conn, err := c.dialFn(ctx, "tcp", c.cfg.Server.String())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = conn.Close()
		return ErrClosed
	}
	done := make(chan struct{})
	c.readDone = done
	c.mu.Unlock()
	c.wmu.Lock()
	c.conn, c.wdeadline = conn, time.Time{}
	c.wmu.Unlock()
	go c.readStreamLoop(conn, done)
	return nil
}

// Server returns the TURN server's address.
func (c *Client) Server() netip.AddrPort { return c.cfg.Server }

// Allocation returns the current allocation; ok is false while there is
// none (before Allocate, or lost and not yet recovered).
func (c *Client) Allocation() (a Allocation, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alloc, c.allocated
}

// HandlePacket gives the client a packet read from its UDP conn. handled is
// false when the packet is not the client's (not from the server, or a STUN
// answer to another client on the socket): the caller processes it. When
// the packet is relayed media (ChannelData, Data indication), payload is it
// (aliasing b) and peer is where it came from; other server messages give a
// nil payload. HandlePacket does not allocate for ChannelData.
func (c *Client) HandlePacket(b []byte, from netip.AddrPort) (payload []byte, peer netip.AddrPort, handled bool) {
	if from.Addr().Unmap() != c.cfg.Server.Addr() || from.Port() != c.cfg.Server.Port() {
		return nil, netip.AddrPort{}, false
	}
	return c.handleServer(b)
}

// handleServer sorts a message from the server.
func (c *Client) handleServer(b []byte) (payload []byte, peer netip.AddrPort, handled bool) {
	if ch, p, ok := parseChannelData(b); ok {
		c.mu.Lock()
		if i := int(ch) - minChannel; i >= 0 && i < len(c.channels) {
			peer = c.channels[i]
		}
		c.mu.Unlock()
		if !peer.IsValid() {
			return nil, netip.AddrPort{}, true // an unbound channel: drop
		}
		return p, peer, true
	}
	if !isSTUN(b) {
		return nil, netip.AddrPort{}, false
	}
	switch stunClass(b) {
	case 1: // indication
		peer, p, ok := parseDataIndication(b)
		if !ok {
			return nil, netip.AddrPort{}, true
		}
		c.learnPeer(peer)
		return p, peer, true
	case 2, 3:
		return nil, netip.AddrPort{}, c.handleResponse(b)
	}
	return nil, netip.AddrPort{}, true
}

// Send sends p to peer through the relay: as ChannelData once a channel is
// bound, else as a Send indication (and a channel is bound in the
// background). A peer without a permission gets one first, in the
// background; the server drops what is sent to it until then. Send does
// not allocate on a bound channel over UDP with a *net.UDPConn.
func (c *Client) Send(p []byte, peer netip.AddrPort) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	c.wbuf, err = c.AppendFrame(c.wbuf[:0], p, peer)
	if err != nil {
		return err
	}
	return c.writeLocked(c.wbuf)
}

// AppendFrame appends to dst the message that carries p to peer through
// the relay (ChannelData, or a Send indication before the channel is
// bound), for the caller to write to Server() on its conn. It starts a
// permission and channel for an unknown peer in the background.
func (c *Client) AppendFrame(dst, p []byte, peer netip.AddrPort) ([]byte, error) {
	if len(p) > 0xFFFF-sendIndFixed {
		return dst, fmt.Errorf("%w: %d bytes do not fit one message", ErrTooLarge, len(p))
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	c.mu.Lock()
	if !c.allocated {
		c.mu.Unlock()
		return dst, ErrNoAllocation
	}
	pe := c.peers[peer]
	if pe != nil && pe.bound {
		ch := pe.ch
		c.mu.Unlock()
		return appendChannelData(dst, ch, p, c.stream), nil
	}
	c.sendID[11]++
	if c.sendID[11] == 0 {
		c.sendID[10]++
	}
	id := c.sendID
	c.mu.Unlock()
	if pe == nil {
		c.learnPeer(peer)
	}
	return appendSendIndication(dst, &id, peer, p), nil
}

// writeRaw writes a whole message to the server.
func (c *Client) writeRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

func (c *Client) writeLocked(b []byte) error {
	if c.stream {
		conn := c.conn
		if conn == nil {
			return ErrNoAllocation
		}
		// A stream a NAT forgot takes writes until its buffer is full, then
		// blocks: bound that, and give up a stream that stays full (a
		// timed-out write may have left half a frame on it). The deadline
		// moves at most twice per timeout, not per packet.
		if now := time.Now(); now.Add(StreamWriteTimeout / 2).After(c.wdeadline) {
			c.wdeadline = now.Add(StreamWriteTimeout)
			_ = conn.SetWriteDeadline(c.wdeadline)
		}
		if _, err := conn.Write(b); err != nil {
			go c.streamBroken(conn, fmt.Errorf("write: %w", err)) // it takes wmu, which the caller holds
			return err
		}
		return nil
	}
	return callerconn.WriteTo(c.pc, b, c.cfg.Server)
}

// handleRead is the read loop's handler when the client reads the
// caller's UDP conn: the server's messages are consumed (relayed media to
// OnData), the rest goes to Unhandled.
func (c *Client) handleRead(b []byte, from netip.AddrPort) {
	p, peer, handled := c.HandlePacket(b, from)
	switch {
	case !handled && c.cfg.Unhandled != nil:
		c.cfg.Unhandled(b, from)
	case p != nil && c.cfg.OnData != nil:
		c.cfg.OnData(p, peer)
	}
}

// readStreamLoop reads framed messages from a TCP or TLS stream. When the
// stream breaks, the allocation (which lives on it) is lost.
func (c *Client) readStreamLoop(conn net.Conn, done chan struct{}) {
	defer close(done)
	r := bufio.NewReaderSize(conn, 4096)
	buf := make([]byte, maxFrameSize)
	for {
		if _, err := io.ReadFull(r, buf[:4]); err != nil {
			c.streamBroken(conn, err)
			return
		}
		n := frameLen(buf[:4])
		if n < 4 || n > len(buf) {
			c.streamBroken(conn, fmt.Errorf("%w: bad frame on the stream", ErrMalformed))
			return
		}
		if _, err := io.ReadFull(r, buf[4:n]); err != nil {
			c.streamBroken(conn, err)
			return
		}
		p, peer, _ := c.handleServer(buf[:n])
		if p != nil && c.cfg.OnData != nil {
			c.cfg.OnData(p, peer)
		}
	}
}

func (c *Client) streamBroken(conn net.Conn, err error) {
	c.wmu.Lock()
	current := c.conn == conn
	if current {
		c.conn = nil // before Close: the reader's error then finds it given up, and this err is the reason
	}
	c.wmu.Unlock()
	_ = conn.Close()
	if !current {
		return // a stream already given up (an unanswered keep-alive) or replaced
	}
	c.mu.Lock()
	closed := c.closed
	for _, t := range c.txs {
		c.finishLocked(t, nil, fmt.Errorf("%w: stream: %w", ErrUnreachable, err))
	}
	c.mu.Unlock()
	if !closed {
		c.lost(fmt.Errorf("stream to %s: %w", c.cfg.Server, err))
	}
}

// Close deletes the allocation (a Refresh with lifetime 0, not waited for),
// stops the timers and the reader, fails requests in flight with ErrClosed
// and waits for background work. Over UDP it never closes the conn; a
// stream is closed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	wasAllocated := c.allocated
	integrity, realm, nonce := c.integrity, c.realm, c.nonce
	c.mu.Unlock()
	if wasAllocated && integrity != nil {
		if req, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
			lifetimeAttr(0), stun.NewUsername(c.cfg.Username), stun.NewRealm(realm), stun.NewNonce(nonce),
			integrity, stun.Fingerprint); err == nil {
			_ = c.writeRaw(req.Raw)
		}
	}
	c.mu.Lock()
	c.closed = true
	c.allocated = false
	for _, t := range c.txs {
		c.finishLocked(t, nil, ErrClosed)
	}
	for _, t := range []clock.Timer{c.refresh, c.perms, c.keep, c.recovery} {
		if t != nil {
			t.Stop()
		}
	}
	done := c.readDone
	c.mu.Unlock()
	c.bg.Wait()
	if c.stream {
		c.wmu.Lock()
		if c.conn != nil {
			_ = c.conn.Close()
		}
		c.wmu.Unlock()
		if done != nil {
			<-done
		}
	} else if c.loop != nil {
		c.loop.Stop()
	}
	return nil
}

// lifetimeAttr is the LIFETIME attribute (RFC 8656 section 18.2).
type lifetimeAttr time.Duration

func (l lifetimeAttr) AddTo(m *stun.Message) error {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], uint32(time.Duration(l)/time.Second))
	m.Add(stun.AttrLifetime, v[:])
	return nil
}
