package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/binding"
	"github.com/sipnat/sipnat/sipmsg"
)

// MediaRelay is a relayed address for one media socket. Reached over UDP
// it runs on that socket (the caller's read loop hands its packets in
// through HandleMediaPacket); reached over TCP or TLS it reads its own
// stream and hands relayed media to RelayRequest.OnMedia. Package
// agent/turnrelay makes them with a TURN client; the agent itself links no
// relay code, so a UA that never relays does not carry it.
type MediaRelay interface {
	// Allocate gets the relayed address peers send to.
	Allocate(ctx context.Context) (relayed netip.AddrPort, err error)
	// Server is the relay server, for the plan's words.
	Server() netip.AddrPort
	// HandlePacket takes a packet read from the socket: handled is false
	// for what is not the relay's (always, for a relay on a stream);
	// payload and peer are relayed media.
	HandlePacket(b []byte, from netip.AddrPort) (payload []byte, peer netip.AddrPort, handled bool)
	// Send sends b to peer through the relay.
	Send(b []byte, peer netip.AddrPort) error
	// Permit lets peer's media through the relay.
	Permit(ctx context.Context, peer netip.AddrPort) error
	// Close releases the relayed address; it leaves the socket open.
	Close() error
}

// RelayEvent is what a MediaRelay reports: the allocation was lost
// (Lost), or made again at Relayed (Previous is the address before).
type RelayEvent struct {
	Lost     bool           // the allocation is gone
	Relayed  netip.AddrPort // the relayed address now (zero while lost)
	Previous netip.AddrPort // the relayed address before
	Reason   string         // why, in words
}

// RelayRequest is what the agent asks a RelayMaker for: a relay for one
// media socket, reached over Transport.
type RelayRequest struct {
	// Media is the media socket. A relay reached over UDP runs on it.
	Media net.PacketConn
	// Transport is how the relay server is reached: sipmsg.UDP from Media,
	// or sipmsg.TCP or sipmsg.TLS on a stream the relay dials and reads
	// itself (RFC 8656 section 3.1: TURN over TCP or TLS, UDP relayed).
	Transport sipmsg.Transport
	// KeepAlive is how often the relay's flow is kept open: the interval
	// the plan's measured binding lifetime implies over UDP,
	// Config.StreamKeepAlive over a stream.
	KeepAlive time.Duration
	// OnEvent receives the relay's events.
	OnEvent func(RelayEvent)
	// OnMedia receives the media a relay on a stream reads (payload, and
	// the peer it came from; b is only valid during the call). Unused over
	// UDP, where relayed media comes back from HandleMediaPacket.
	OnMedia func(b []byte, peer netip.AddrPort)
}

// RelayMaker makes the MediaRelay r asks for; ctx bounds the dialling of a
// stream. turnrelay.New returns one.
type RelayMaker func(ctx context.Context, r RelayRequest) (MediaRelay, error)

// maxLatched bounds the addresses media arrived from directly that get a
// permission on the relay.
const maxLatched = 8

// relayMedia is the third answer of the media decision: where the plan
// needs a relay and Config.NewRelay makes one, it allocates a relayed
// address for every media socket (one allocation each: RTP and RTCP
// sockets get their own), names them in the plan's media and SDP, and says
// so. The relay is reached over UDP from the media sockets, or over TCP
// (or TLS) when UDP is blocked or Config.RelayTransport asks. The relays
// keep their flows open (at the keep-alive interval the measured binding
// lifetime implies over UDP, at Config.StreamKeepAlive over a stream), and
// over UDP follow a rebooted NAT with a mobility ticket (RFC 8016) where
// the server gives one.
func (a *Agent) relayMedia(ctx context.Context, p *Plan) {
	mk := a.cfg.NewRelay
	switch {
	case !p.Relay.Needed:
		if mk != nil {
			p.note("a direct media path works: the relay is not used")
		}
		return
	case mk == nil:
		p.note("no relay configured (Config.NewRelay): nothing relays the media")
		return
	}
	tr, keep, ok := a.relayTransport(p)
	if !ok {
		return
	}
	clients := make([]MediaRelay, len(a.cfg.Media))
	relayed := make([]netip.AddrPort, len(a.cfg.Media))
	var err error
	for i, m := range a.cfg.Media {
		req := RelayRequest{Media: m, Transport: tr, KeepAlive: keep, OnEvent: func(e RelayEvent) { a.relayEvent(i, e) }}
		if tr != sipmsg.UDP {
			req.OnMedia = func(b []byte, peer netip.AddrPort) { a.cfg.OnRelayedMedia(i, b, peer) }
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var c MediaRelay
		c, err = mk(actx, req)
		if err != nil {
			cancel()
			err = fmt.Errorf("media socket %d: %w", i, err)
			break
		}
		clients[i] = c
		a.mu.Lock()
		a.relays = clients // the read loops hand the relay's answers in from now on
		a.mu.Unlock()
		relayed[i], err = c.Allocate(actx)
		cancel()
		if err != nil {
			err = fmt.Errorf("media socket %d: %w", i, err)
			break
		}
	}
	var srv netip.AddrPort
	if len(clients) > 0 && clients[0] != nil {
		srv = clients[0].Server()
	}
	p.Relay.Transport = tr
	if err != nil {
		a.mu.Lock()
		a.relays = nil
		a.mu.Unlock()
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
		p.Relay.Reason += fmt.Sprintf("; the relay %s over %s failed: %v", srv, tr, err)
		p.TwoWayAudio = Prediction{Reason: p.Relay.Reason}
		return
	}
	var names []string
	for i := range p.Media {
		p.Media[i].Public, p.Media[i].From, p.Media[i].KeepAlive = relayed[i], FromRelay, false
		names = append(names, relayed[i].String())
	}
	p.Relay.Server, p.Relay.Allocations = srv, relayed
	why := "nothing direct brings the peer's media in"
	switch {
	case p.Relay.Forced:
		why = "the configuration forces it"
	case p.udpBlocked():
		why = "UDP is blocked: the relay is reached over " + tr.String()
	}
	p.TwoWayAudio = Prediction{Works: true, Reason: fmt.Sprintf(
		"media through the TURN relay %s over %s (%s): the SDP names the relayed address %s, peers get permissions and channels, and the relay's flow is kept open every %v",
		srv, tr, why, strings.Join(names, ", "), keep)}
}

// relayTransport picks how the relay is reached, and how often its flow is
// kept open: Config.RelayTransport, else UDP from the media sockets, or
// TCP when UDP is blocked. ok is false (and the plan says why) when no
// transport can work.
func (a *Agent) relayTransport(p *Plan) (tr sipmsg.Transport, keep time.Duration, ok bool) {
	tr = a.cfg.RelayTransport
	blocked := p.udpBlocked()
	switch {
	case tr == sipmsg.TransportUnknown && blocked:
		tr = sipmsg.TCP
	case tr == sipmsg.TransportUnknown:
		tr = sipmsg.UDP
	case tr == sipmsg.UDP && blocked:
		p.note("UDP seems blocked: a relay reached over UDP from the media sockets would not help (Config.RelayTransport: TCP or TLS would)")
		return tr, 0, false
	}
	if tr == sipmsg.UDP {
		keep = p.KeepAlive.Interval
		if keep <= 0 {
			keep = binding.KeepAliveInterval(0)
		}
		return tr, keep, true
	}
	if a.cfg.OnRelayedMedia == nil {
		p.note("a relay over %s hands relayed media to Config.OnRelayedMedia, which is not set: the relay is not used", tr)
		return tr, 0, false
	}
	keep = a.cfg.StreamKeepAlive
	if keep <= 0 {
		keep = binding.KeepAliveInterval(0)
	}
	return tr, keep, true
}

func (a *Agent) relay(i int) MediaRelay {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i < 0 || i >= len(a.relays) {
		return nil
	}
	return a.relays[i]
}

// relayEvent turns a relay's events into the agent's: a lost allocation,
// and the recovered one with its (maybe new) relayed address.
func (a *Agent) relayEvent(i int, e RelayEvent) {
	switch {
	case e.Lost:
		a.emit(Event{Kind: RelayLost, Media: i, Previous: e.Previous, Reason: e.Reason})
	default:
		evs := []Event{{Kind: RelayRecovered, Media: i, Address: e.Relayed, Previous: e.Previous, Reason: e.Reason}}
		a.mu.Lock()
		if p := a.plan; p != nil && i < len(p.Media) && p.Media[i].Public != e.Relayed {
			prev := p.Media[i].Public
			p.Media[i].Public = e.Relayed
			if i < len(p.Relay.Allocations) {
				p.Relay.Allocations[i] = e.Relayed
			}
			evs = append(evs, Event{Kind: MediaAddressChanged, Media: i, Address: e.Relayed, Previous: prev,
				Reason: fmt.Sprintf("the relay allocated media socket %d again at %s (was %s): send a new SDP", i, e.Relayed, prev)})
		}
		a.mu.Unlock()
		a.emit(evs...)
	}
}

// MediaPeer tells the agent where a peer's media comes from, from its SDP
// (c= and m=), before the call's media starts. With a relay, the peer gets
// a permission and a channel on it now, so its first packets are relayed;
// without one it does nothing.
func (a *Agent) MediaPeer(ctx context.Context, i int, peer netip.AddrPort) error {
	r := a.relay(i)
	if r == nil {
		return nil
	}
	if err := r.Permit(ctx, peer); err != nil {
		return fmt.Errorf("agent: relay permission for %s: %w", peer, err)
	}
	return nil
}

// SendMedia sends b (RTP or RTCP) to peer from media socket i: through the
// relay when the plan uses one, else directly. It does not allocate on a
// *net.UDPConn.
func (a *Agent) SendMedia(i int, b []byte, peer netip.AddrPort) error {
	if i < 0 || i >= len(a.cfg.Media) {
		return fmt.Errorf("%w: no media socket %d in Config.Media", ErrConfig, i)
	}
	if r := a.relay(i); r != nil {
		return r.Send(b, peer)
	}
	if u, ok := a.cfg.Media[i].(*net.UDPConn); ok {
		_, err := u.WriteToUDPAddrPort(b, peer)
		return err
	}
	_, err := a.cfg.Media[i].WriteTo(b, net.UDPAddrFromAddrPort(peer))
	return err
}

// latch gives an address media arrived from directly, while media socket i
// is relayed, a permission on the relay (in the background, a few
// addresses at most): the peer's media then also comes through the relay.
func (a *Agent) latch(i int, r MediaRelay, from netip.AddrPort) {
	a.mu.Lock()
	if a.latched[from] || len(a.latched) >= maxLatched || a.closed {
		a.mu.Unlock()
		return
	}
	if a.latched == nil {
		a.latched = map[netip.AddrPort]bool{}
	}
	a.latched[from] = true
	a.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Permit(ctx, from); err != nil {
			a.log.Debug("agent: relay permission for direct media", "from", from, "err", err)
		}
	}()
}

func (a *Agent) closeRelays() {
	a.mu.Lock()
	rs := a.relays
	a.relays = nil
	a.mu.Unlock()
	for _, r := range rs {
		if r != nil {
			_ = r.Close()
		}
	}
}
