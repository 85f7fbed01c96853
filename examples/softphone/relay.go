package main

import (
	"context"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/turn"
)

// Relay says how the phone may use a TURN relay for its media.
type Relay struct {
	Server   netip.AddrPort // the TURN server (UDP); zero: no relay
	User     string         // long-term credentials
	Password string
	Force    bool // relay even where a direct path works
}

// relayMedia is the third answer of the media decision: where nothing
// direct brings the caller's audio in (an address-dependent mapping with no
// public port mapping), or when forced, the phone allocates a TURN relay on
// its RTP socket and names the relayed address in its SDP.
func (p *Phone) relayMedia(ctx context.Context, s *Strategy) {
	r := p.cfg.Relay
	s.MediaPath = "direct"
	switch {
	case !r.Server.IsValid():
		if r.Force {
			s.note("relay forced, but no TURN server is configured: media stays direct")
		}
		return
	case s.TwoWayAudio && !r.Force:
		s.note("a direct media path works: the TURN relay %s is not used", r.Server)
		return
	}
	why := "relay forced"
	if !s.TwoWayAudio {
		why = "nothing direct brings the caller's audio in"
	}
	keep := s.KeepAlive // the interval the measured NAT binding lifetime implies
	if keep <= 0 {
		keep = turn.DefaultKeepAlive
	}
	c, err := turn.New(p.rtp, turn.Config{
		Server: r.Server, Username: r.User, Password: r.Password, CallerReads: true, KeepAlive: keep, Mobility: true,
		Logger: p.log, OnEvent: p.relayEvent,
	})
	if err == nil {
		p.mu.Lock()
		p.relay = c // the RTP read loop hands it the server's answers from now on
		p.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var a turn.Allocation
		a, err = c.Allocate(actx)
		cancel()
		if err == nil {
			s.Relay, s.MediaPath = &a, "relay"
			s.Media, s.MediaFrom, s.TwoWayAudio = a.Relayed, "TURN relay", true
			s.note("media through the TURN relay (%s): the SDP names the relayed address %s; keep-alive to the relay every %v", why, a.Relayed, keep)
			return
		}
		p.mu.Lock()
		p.relay = nil
		p.mu.Unlock()
		_ = c.Close()
	}
	s.note("the TURN relay %s failed (%v): media stays direct", r.Server, err)
}

// relayEvent reports the relay's events; a new relayed address is the one
// the next SDP names.
func (p *Phone) relayEvent(e turn.Event) {
	p.printf("relay: %s", e)
	if e.Kind == turn.EventRecovered {
		p.setMedia(e.Relayed)
	}
}

func (p *Phone) relayClient() *turn.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relay
}

// permitPeer gives a peer's address a permission and a channel on the
// relay: the address of the caller's SDP when the call starts, and any
// address the caller's media arrives from directly.
func (p *Phone) permitPeer(ctx context.Context, r *turn.Client, peer netip.AddrPort) {
	if _, seen := p.permitted.LoadOrStore(peer, true); seen {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.Permit(pctx, peer); err != nil {
		p.printf("relay: permission for %s: %v", peer, err)
		p.permitted.Delete(peer)
	}
}

// relayedRTP takes a packet read from the RTP socket: relayed media comes
// back unwrapped (relayed true), the relay's other messages are consumed
// (b nil), and everything else is returned as it is.
func (p *Phone) relayedRTP(b []byte, from netip.AddrPort) (out []byte, relayed bool) {
	r := p.relayClient()
	if r == nil {
		return b, false
	}
	payload, _, ok := r.HandlePacket(b, from)
	if !ok {
		return b, false
	}
	return payload, payload != nil
}
