package turn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/stun/v2"

	"github.com/sipnat/sipnat/clock"
)

// Timeouts of the background work.
const (
	backgroundTimeout = 10 * time.Second // one refresh, bind or re-allocation
	maxBackoff        = 30 * time.Second // between failed re-allocations
)

// Allocate asks the server for a relayed UDP address (RFC 8656 section 7),
// with the long-term credentials, and from then on keeps it: Refresh at half
// the lifetime, permissions and channels every PermissionRefresh, a Binding
// keep-alive every KeepAlive, and a new allocation when the old one is lost
// (OnEvent says so). A 437 Allocation Mismatch (a stale allocation of this
// flow on the server) is cleared with a Refresh of lifetime 0 and the
// Allocate retried. Errors: ErrUnauthorized, ErrUnreachable, ErrQuota,
// ErrUnsupportedTransport, ErrForbidden, or another *Error.
func (c *Client) Allocate(ctx context.Context) (Allocation, error) {
	c.mu.Lock()
	if c.allocated {
		a := c.alloc
		c.mu.Unlock()
		return a, nil
	}
	c.mu.Unlock()
	a, err := c.allocate(ctx)
	if err != nil {
		return Allocation{}, err
	}
	return a, nil
}

func (c *Client) allocate(ctx context.Context) (Allocation, error) {
	attrs := []stun.Setter{requestedUDP{}, lifetimeAttr(c.cfg.Lifetime)}
	switch {
	case c.cfg.Reservation != 0:
		attrs = append(attrs, reservationAttr(c.cfg.Reservation))
	case c.cfg.EvenPort:
		attrs = append(attrs, rawAttr{stun.AttrEvenPort, []byte{evenPortRBit}})
	}
	c.mu.Lock()
	mobility := c.cfg.Mobility && !c.noMobility
	c.mu.Unlock()
	attrs = append(attrs, mobilityAttr(mobility))
	res, err := c.request(ctx, stun.MethodAllocate, attrs...)
	if mobility && isCode(err, 405) {
		// coturn without --mobility answers 405 Mobility Forbidden: allocate without
		c.log.Debug("turn: the server refuses mobility, allocating without", "err", err)
		c.mu.Lock()
		c.noMobility = true
		c.mu.Unlock()
		attrs[len(attrs)-1] = mobilityAttr(false)
		res, err = c.request(ctx, stun.MethodAllocate, attrs...)
	}
	if isCode(err, 437) {
		// A stale allocation of this 5-tuple (e.g. from before a restart):
		// delete it and try again; servers (coturn) free it a moment later.
		_, derr := c.request(ctx, stun.MethodRefresh, lifetimeAttr(0))
		c.log.Debug("turn: 437 on Allocate, deleted the stale allocation", "err", derr)
		if derr != nil && !isCode(derr, 437) {
			return Allocation{}, fmt.Errorf("allocate: %w (and deleting the stale allocation: %v)", err, derr)
		}
		for wait := 50 * time.Millisecond; isCode(err, 437) && wait < 2*time.Second; wait *= 2 {
			if werr := c.wait(ctx, wait); werr != nil {
				break
			}
			res, err = c.request(ctx, stun.MethodAllocate, attrs...)
		}
	}
	if err != nil {
		return Allocation{}, fmt.Errorf("allocate: %w", err)
	}
	a := Allocation{Server: c.cfg.Server, Transport: c.cfg.Transport}
	var relayed, mapped stun.XORMappedAddress
	if err := relayed.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil {
		return Allocation{}, fmt.Errorf("allocate: %w: no XOR-RELAYED-ADDRESS", ErrMalformed)
	}
	a.Relayed = addrPortFromIP(relayed)
	if mapped.GetFromAs(res, stun.AttrXORMappedAddress) == nil {
		a.Mapped = addrPortFromIP(mapped)
	}
	a.Lifetime = lifetimeOf(res, c.cfg.Lifetime)
	if v, err := res.Get(stun.AttrReservationToken); err == nil && len(v) == reservationSz {
		a.Reservation = binary.BigEndian.Uint64(v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Allocation{}, ErrClosed
	}
	c.ticket = ticketOf(res)
	a.Mobile = c.ticket != nil
	c.alloc, c.allocated = a, true
	c.expires = c.clock.Now().Add(a.Lifetime)
	c.scheduleLocked()
	c.log.Debug("turn: allocated", "allocation", a.String())
	return a, nil
}

// refreshIn is when to refresh an allocation of lifetime l: at half of it,
// and never sooner than half a second (a server granting 0 or 1 s must not
// make the client spin).
func refreshIn(l time.Duration) time.Duration { return max(l/2, 500*time.Millisecond) }

// wait waits d on the client's clock, or until ctx ends.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	ch := make(chan struct{})
	t := c.clock.AfterFunc(d, func() { close(ch) })
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scheduleLocked (c.mu held) arms the refresh, permission and keep-alive
// timers of a fresh allocation.
func (c *Client) scheduleLocked() {
	c.refresh = c.rearm(c.refresh, refreshIn(c.alloc.Lifetime), c.refreshAllocation)
	c.perms = c.rearm(c.perms, c.cfg.PermissionRefresh, c.refreshPermissions)
	if c.cfg.KeepAlive > 0 {
		c.keep = c.rearm(c.keep, c.cfg.KeepAlive, c.keepAlive)
	}
}

// rearm resets t to fire after d, running f in a background goroutine, or
// makes it.
func (c *Client) rearm(t clock.Timer, d time.Duration, f func()) clock.Timer {
	if t != nil {
		t.Reset(d)
		return t
	}
	return c.clock.AfterFunc(d, func() { c.background(f) })
}

// background runs f in a goroutine that Close waits for, unless closed.
func (c *Client) background(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f()
	}()
}

func (c *Client) bgContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), backgroundTimeout)
}

// refreshAllocation renews the allocation (RFC 8656 section 8).
func (c *Client) refreshAllocation() {
	ctx, cancel := c.bgContext()
	defer cancel()
	res, err := c.request(ctx, stun.MethodRefresh, lifetimeAttr(c.cfg.Lifetime))
	c.mu.Lock()
	if !c.allocated || c.closed {
		c.mu.Unlock()
		return
	}
	if err == nil {
		if t := ticketOf(res); t != nil {
			c.ticket = t
		}
		c.alloc.Lifetime = lifetimeOf(res, c.cfg.Lifetime)
		c.expires = c.clock.Now().Add(c.alloc.Lifetime)
		c.refresh.Reset(refreshIn(c.alloc.Lifetime))
		c.mu.Unlock()
		return
	}
	left := c.expires.Sub(c.clock.Now())
	relayed := c.alloc.Relayed
	c.mu.Unlock()
	if errors.Is(err, ErrMismatch) || left <= 0 {
		c.lost(fmt.Errorf("refresh: %w", err))
		return
	}
	c.emit(Event{Kind: EventRefreshFailed, Relayed: relayed, Err: err})
	c.mu.Lock()
	if c.allocated {
		c.refresh.Reset(min(left/2, 5*time.Second))
	}
	c.mu.Unlock()
}

// refreshPermissions renews the permissions of every peer in one
// CreatePermission and the channel of every bound peer (a ChannelBind
// refreshes its permission too).
func (c *Client) refreshPermissions() {
	ctx, cancel := c.bgContext()
	defer cancel()
	var err error
	if attrs := c.peerAttrs(); len(attrs) > 0 {
		_, err = c.request(ctx, stun.MethodCreatePermission, attrs...)
	}
	for _, p := range c.boundPeers() {
		if err != nil {
			break
		}
		err = c.bind(ctx, p)
	}
	c.mu.Lock()
	if !c.allocated || c.closed {
		c.mu.Unlock()
		return
	}
	relayed := c.alloc.Relayed
	next := c.cfg.PermissionRefresh
	if err != nil {
		next = min(next/4, 5*time.Second)
	}
	c.perms.Reset(next)
	c.mu.Unlock()
	switch {
	case errors.Is(err, ErrMismatch):
		c.lost(fmt.Errorf("permission refresh: %w", err))
	case err != nil:
		c.emit(Event{Kind: EventRefreshFailed, Relayed: relayed, Err: fmt.Errorf("permission refresh: %w", err)})
	}
}

// keepAlive sends a Binding request to the server on the flow of the
// allocation, which keeps the NAT binding open between refreshes, and
// tells from XOR-MAPPED-ADDRESS whether the NAT moved the flow (then the
// server no longer knows it as the allocation's: allocate again).
func (c *Client) keepAlive() {
	ctx, cancel := context.WithTimeout(context.Background(), max(c.cfg.KeepAlive, time.Second))
	defer cancel()
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return
	}
	res, err := c.transact(ctx, req)
	c.mu.Lock()
	if !c.allocated || c.closed {
		c.mu.Unlock()
		return
	}
	c.keep.Reset(c.cfg.KeepAlive)
	want, relayed := c.alloc.Mapped, c.alloc.Relayed
	c.mu.Unlock()
	if err != nil {
		c.emit(Event{Kind: EventRefreshFailed, Relayed: relayed, Err: fmt.Errorf("keep-alive: %w", err)})
		if c.stream && !errors.Is(err, ErrClosed) {
			// A stream delivers or breaks: no answer means a NAT forgot the
			// connection (a reboot) and drops its segments without a reset.
			// Give it up so the allocation is made again on a new one.
			c.wmu.Lock()
			conn := c.conn
			c.wmu.Unlock()
			if conn != nil {
				c.streamBroken(conn, fmt.Errorf("keep-alive unanswered: %w", err))
			}
		}
		return
	}
	var mapped stun.XORMappedAddress
	if c.stream || res.Type.Class != stun.ClassSuccessResponse || mapped.GetFrom(res) != nil || !want.IsValid() {
		return
	}
	got := addrPortFromIP(mapped)
	c.log.Debug("turn: keep-alive answered", "mapped", got)
	if got != want {
		why := fmt.Errorf("the NAT moved the flow to the server from %s to %s: %w", want, got, ErrNoAllocation)
		if err := c.move(got); err != nil {
			c.lost(fmt.Errorf("%w (%w)", why, err))
		}
	}
}

// move takes the allocation to the flow's new public address with the
// mobility ticket (RFC 8016 section 3.3): a Refresh with MOBILITY-TICKET
// from the new 5-tuple.
func (c *Client) move(mapped netip.AddrPort) error {
	c.mu.Lock()
	ticket, relayed := c.ticket, c.alloc.Relayed
	c.mu.Unlock()
	if ticket == nil {
		return fmt.Errorf("move: no mobility ticket: %w", ErrMismatch)
	}
	ctx, cancel := c.bgContext()
	defer cancel()
	res, err := c.request(ctx, stun.MethodRefresh, lifetimeAttr(c.cfg.Lifetime), rawAttr{attrMobilityTicket, ticket})
	if err != nil {
		return fmt.Errorf("mobility refresh: %w", err)
	}
	c.mu.Lock()
	if t := ticketOf(res); t != nil {
		c.ticket = t
	}
	c.alloc.Mapped = mapped
	c.alloc.Lifetime = lifetimeOf(res, c.cfg.Lifetime)
	c.expires = c.clock.Now().Add(c.alloc.Lifetime)
	c.scheduleLocked()
	c.mu.Unlock()
	c.emit(Event{Kind: EventMoved, Relayed: relayed, Previous: relayed})
	return nil
}

// attrMobilityTicket is MOBILITY-TICKET (RFC 8016 section 3.1).
const attrMobilityTicket stun.AttrType = 0x8030

// mobilityAttr is an empty MOBILITY-TICKET (asking for one), or nothing.
type mobilityAttr bool

func (m mobilityAttr) AddTo(msg *stun.Message) error {
	if m {
		msg.Add(attrMobilityTicket, nil)
	}
	return nil
}

func ticketOf(res *stun.Message) []byte {
	v, err := res.Get(attrMobilityTicket)
	if err != nil || len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// lost forgets the allocation and starts allocating again.
func (c *Client) lost(why error) {
	c.mu.Lock()
	if c.closed || c.recovering {
		c.mu.Unlock()
		return
	}
	prev := c.alloc.Relayed
	c.allocated, c.recovering, c.backoff = false, true, time.Second
	for _, t := range []clock.Timer{c.refresh, c.perms, c.keep} {
		if t != nil {
			t.Stop()
		}
	}
	for _, p := range c.peers {
		p.bound = false
	}
	c.mu.Unlock()
	c.log.Debug("turn: allocation lost", "relayed", prev, "err", why)
	c.emit(Event{Kind: EventLost, Previous: prev, Err: why})
	c.background(func() { c.recover(prev) })
}

// recover allocates again (redialling a stream), restores permissions and
// channels, and retries with a growing backoff until it works or Close.
func (c *Client) recover(prev netip.AddrPort) {
	ctx, cancel := c.bgContext()
	defer cancel()
	err := c.redialIfBroken(ctx)
	var a Allocation
	if err == nil {
		a, err = c.allocate(ctx)
	}
	if err != nil {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		d := c.backoff
		c.backoff = min(2*c.backoff, maxBackoff)
		c.recovery = c.rearm(c.recovery, d, func() { c.recover(prev) })
		c.mu.Unlock()
		c.emit(Event{Kind: EventRefreshFailed, Err: fmt.Errorf("re-allocate: %w", err)})
		return
	}
	c.mu.Lock()
	c.recovering = false
	c.mu.Unlock()
	if attrs := c.peerAttrs(); len(attrs) > 0 {
		_, err = c.request(ctx, stun.MethodCreatePermission, attrs...)
	}
	for _, p := range c.allPeers() {
		if err != nil {
			break
		}
		err = c.bind(ctx, p)
	}
	if err != nil {
		c.log.Debug("turn: restoring permissions after recovery failed", "err", err)
	}
	c.emit(Event{Kind: EventRecovered, Relayed: a.Relayed, Previous: prev})
}

func (c *Client) redialIfBroken(ctx context.Context) error {
	if !c.stream {
		return nil
	}
	c.wmu.Lock()
	broken := c.conn == nil
	c.wmu.Unlock()
	if !broken {
		return nil
	}
	return c.dial(ctx)
}

func (c *Client) emit(e Event) {
	if c.cfg.OnEvent == nil {
		return
	}
	c.events.Lock()
	defer c.events.Unlock()
	c.cfg.OnEvent(e)
}

// Permit installs permissions for peers (CreatePermission, RFC 8656
// section 9) and binds a channel to each (ChannelBind, section 12), so that
// their media is relayed to the client and the client's goes out as
// ChannelData. Call it with the peer's SDP address before the call, and
// with any address media arrives from directly; the client also does it by
// itself for peers it sends to and for Data indications from new ports of
// permitted addresses.
func (c *Client) Permit(ctx context.Context, peers ...netip.AddrPort) error {
	var add []netip.AddrPort
	c.mu.Lock()
	if !c.allocated {
		c.mu.Unlock()
		return ErrNoAllocation
	}
	for _, p := range peers {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		if _, err := c.peerLocked(p); err != nil {
			c.mu.Unlock()
			return err
		}
		add = append(add, p)
	}
	c.mu.Unlock()
	attrs := make([]stun.Setter, 0, len(add))
	for _, p := range add {
		attrs = append(attrs, peerAttr(p))
	}
	if len(attrs) > 0 {
		if _, err := c.request(ctx, stun.MethodCreatePermission, attrs...); err != nil {
			return fmt.Errorf("permit %v: %w", add, err)
		}
	}
	for _, p := range add {
		if err := c.bind(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// peerLocked returns the entry of p, making one with a channel number.
func (c *Client) peerLocked(p netip.AddrPort) (*peer, error) {
	if pe := c.peers[p]; pe != nil {
		return pe, nil
	}
	if len(c.peers) >= c.cfg.MaxPeers {
		return nil, fmt.Errorf("%w (%d): %s", ErrTooManyPeers, c.cfg.MaxPeers, p)
	}
	pe := &peer{ch: c.nextCh}
	c.nextCh++
	c.peers[p] = pe
	c.channels = append(c.channels, p)
	return pe, nil
}

// learnPeer starts, in the background, a permission and a channel for a
// peer the client has not seen.
func (c *Client) learnPeer(p netip.AddrPort) {
	c.mu.Lock()
	if c.peers[p] != nil || !c.allocated {
		c.mu.Unlock()
		return
	}
	_, err := c.peerLocked(p)
	c.mu.Unlock()
	if err != nil {
		c.log.Debug("turn: peer not learnt", "peer", p, "err", err)
		return
	}
	c.background(func() {
		ctx, cancel := c.bgContext()
		defer cancel()
		if err := c.bind(ctx, p); err != nil {
			c.log.Debug("turn: bind failed", "peer", p, "err", err)
		}
	})
}

// bind sends ChannelBind for p's channel; the channel is usable on success.
func (c *Client) bind(ctx context.Context, p netip.AddrPort) error {
	c.mu.Lock()
	pe := c.peers[p]
	if pe == nil || pe.pending {
		c.mu.Unlock()
		return nil
	}
	pe.pending = true
	ch := pe.ch
	c.mu.Unlock()
	_, err := c.request(ctx, stun.MethodChannelBind, channelAttr(ch), peerAttr(p))
	c.mu.Lock()
	pe.pending = false
	if err == nil {
		pe.bound = true
	}
	c.mu.Unlock()
	if err != nil {
		if errors.Is(err, ErrMismatch) {
			c.lost(fmt.Errorf("channel bind: %w", err))
		}
		return fmt.Errorf("bind channel %#x to %s: %w", ch, p, err)
	}
	return nil
}

func (c *Client) peerAttrs() []stun.Setter {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[netip.Addr]bool)
	var attrs []stun.Setter
	for p := range c.peers {
		if !seen[p.Addr()] {
			seen[p.Addr()] = true
			attrs = append(attrs, peerAttr(p))
		}
	}
	return attrs
}

func (c *Client) boundPeers() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []netip.AddrPort
	for p, pe := range c.peers {
		if pe.bound {
			out = append(out, p)
		}
	}
	return out
}

func (c *Client) allPeers() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(c.peers))
	for p := range c.peers {
		out = append(out, p)
	}
	return out
}

// Attributes of the control requests.

type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *stun.Message) error { m.Add(a.t, a.v); return nil }

type requestedUDP struct{}

func (requestedUDP) AddTo(m *stun.Message) error {
	m.Add(stun.AttrRequestedTransport, []byte{protocolUDP, 0, 0, 0})
	return nil
}

type reservationAttr uint64

func (r reservationAttr) AddTo(m *stun.Message) error {
	var v [reservationSz]byte
	binary.BigEndian.PutUint64(v[:], uint64(r))
	m.Add(stun.AttrReservationToken, v[:])
	return nil
}

type channelAttr uint16

func (ch channelAttr) AddTo(m *stun.Message) error {
	m.Add(stun.AttrChannelNumber, []byte{byte(ch >> 8), byte(ch), 0, 0})
	return nil
}

func peerAttr(p netip.AddrPort) stun.Setter {
	return xorPeer(p)
}

type xorPeer netip.AddrPort

func (p xorPeer) AddTo(m *stun.Message) error {
	ap := netip.AddrPort(p)
	a := stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	return a.AddToAs(m, stun.AttrXORPeerAddress)
}

func addrPortFromIP(a stun.XORMappedAddress) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
}

func lifetimeOf(res *stun.Message, def time.Duration) time.Duration {
	v, err := res.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 {
		return def
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
}
