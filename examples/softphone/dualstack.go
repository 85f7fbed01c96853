package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/agent"
)

// DualConfig gives a dual-stack phone its sockets and servers of the
// other address family; the agent then picks the family per call.
type DualConfig struct {
	SIP, RTP  net.PacketConn   // UDP sockets of the other family, bound to a specific address
	Registrar netip.AddrPort   // the registrar's address in that family
	STUN      []netip.AddrPort // STUN servers in that family
}

// leg is the phone's sockets of one address family and their agent.
type leg struct {
	family             agent.Family
	sip, rtp           net.PacketConn
	sipLocal, rtpLocal netip.AddrPort
	nat                *agent.Agent
	registrar          netip.AddrPort
}

// newLegs makes the leg of the given sockets and, with Config.Dual, the
// other family's, with an agent each (an agent.DualStack for two).
func (p *Phone) newLegs(sip, rtp net.PacketConn) error {
	cfg := p.cfg
	base := agent.Config{
		Domain: cfg.Domain, AOR: p.aor(), Disable: cfg.Disable, LifetimeMax: cfg.LifetimeMax, Gateway: cfg.Gateway,
		NewRelay: p.newRelay(), Relay: map[bool]agent.RelayMode{false: agent.RelayAuto, true: agent.RelayForce}[cfg.ForceRelay],
		RelayTransport: cfg.TURNTransport, StreamKeepAlive: cfg.TURNKeepAlive,
		DialContext: cfg.DialContext, ListenPacket: cfg.ListenPacket, UserAgent: "sipnat-softphone",
		Logger: cfg.Logger,
	}
	mk := func(sip, rtp net.PacketConn, registrar netip.AddrPort, stun []netip.AddrPort) (*leg, agent.Config, error) {
		c := base
		c.SIP, c.Media, c.Registrar, c.STUN = sip, []net.PacketConn{rtp}, registrar, stun
		l := &leg{sip: sip, rtp: rtp, registrar: registrar}
		var err error
		if l.sipLocal, err = localAddr(sip); err != nil {
			return nil, c, fmt.Errorf("SIP %w", err)
		}
		if l.rtpLocal, err = localAddr(rtp); err != nil {
			return nil, c, fmt.Errorf("RTP %w", err)
		}
		l.family = agent.FamilyOf(l.sipLocal.Addr())
		c.OnRelayedMedia = func(_ int, b []byte, _ netip.AddrPort) { p.media(l, b) }
		c.OnEvent = func(e agent.Event) {
			if p.sl() != l { // the media-only family: nothing to register again
				p.printf("nat (%s): %s", l.family, e)
				return
			}
			p.natEvent(e)
		}
		if l.family == agent.IPv6 {
			c.NAT64 = cfg.NAT64
		}
		return l, c, nil
	}
	first, c1, err := mk(sip, rtp, cfg.Registrar, cfg.STUN)
	if err != nil {
		return err
	}
	p.legs = []*leg{first}
	p.sig.Store(first)
	if cfg.Dual == nil {
		a, err := agent.New(c1)
		first.nat = a
		return err
	}
	d := cfg.Dual
	second, c2, err := mk(d.SIP, d.RTP, d.Registrar, d.STUN)
	if err != nil {
		return fmt.Errorf("dual stack: %w", err)
	}
	if second.family == first.family {
		return fmt.Errorf("dual stack: both SIP sockets are %s", first.family)
	}
	p.legs = append(p.legs, second)
	v4, v6 := c1, c2
	if first.family == agent.IPv6 {
		v4, v6 = c2, c1
	}
	ds, err := agent.NewDualStack(v4, v6)
	if err != nil {
		return err
	}
	p.dual = ds
	first.nat, second.nat = ds.Agent(first.family), ds.Agent(second.family)
	return nil
}

// sl is the leg SIP goes over.
func (p *Phone) sl() *leg { return p.sig.Load() }

// startAgents starts the agents, prints the plan and, for a dual-stack
// phone, moves SIP to the family the agent chose for the registration.
// It returns the plan of the leg SIP goes over.
func (p *Phone) startAgents(ctx context.Context) (*agent.Plan, error) {
	if p.dual == nil {
		plan, err := p.sl().nat.Start(ctx)
		if err == nil {
			p.printf("plan: %s", plan)
		}
		return plan, err
	}
	dp, err := p.dual.Start(ctx)
	if err != nil {
		return nil, err
	}
	p.printf("plan: %s", dp)
	for _, l := range p.legs {
		if l.family == dp.Register.Family {
			p.sig.Store(l)
		}
	}
	if plan := p.sl().nat.Plan(); plan != nil {
		return plan, nil
	}
	return nil, fmt.Errorf("softphone: no plan for %s: %s", p.sl().family, dp)
}

func (p *Phone) closeAgents() {
	if p.dual != nil {
		_ = p.dual.Close()
		return
	}
	_ = p.sl().nat.Close()
}

// DualPlan returns what the agents of a dual-stack phone decided (nil for
// a single-stack phone, or before Run decided).
func (p *Phone) DualPlan() *agent.DualPlan {
	if p.dual == nil {
		return nil
	}
	return p.dual.Plan()
}

// chooseLeg picks the leg of a call's media: the agent's per-call family
// choice for a dual-stack phone (from the peer's SDP, or an outgoing
// call's target), the one leg otherwise. It records and prints the choice.
func (p *Phone) chooseLeg(what string, peerSDP []byte, target agent.CallTarget) *leg {
	l := p.legs[0]
	if p.dual != nil {
		ch := p.dual.Choose(peerSDP, target)
		p.printf("%s: media over %s", what, ch)
		for _, c := range p.legs {
			if c.family == ch.Family {
				l = c
			}
		}
	}
	p.mu.Lock()
	p.stats.Families = append(p.stats.Families, string(l.family))
	p.mu.Unlock()
	return l
}

// callTarget is what an outgoing call's family choice knows of target (a
// SIP URI) before the answer: agent.ResolveTarget through the phone's
// dialer, for a dual-stack phone only (at most 2 s; a name that does not
// resolve leaves the registrar's families as the guess, and is said).
func (p *Phone) callTarget(ctx context.Context, target string) agent.CallTarget {
	if p.dual == nil {
		return agent.CallTarget{}
	}
	r := net.DefaultResolver
	if p.cfg.DialContext != nil {
		r = &net.Resolver{PreferGo: true, Dial: p.cfg.DialContext}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	t, err := agent.ResolveTarget(ctx, r, target)
	if err != nil {
		p.printf("outgoing call: %v", err)
	}
	return t
}
