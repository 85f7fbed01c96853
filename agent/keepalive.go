package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/binding"
	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/sipmsg"
)

// startKeepAlives starts the keep-alive of the SIP flow to the registrar,
// and STUN keep-alives on the media sockets whose address STUN found.
func (a *Agent) startKeepAlives(p *Plan) error {
	if p.KeepAlive.Kind == 0 {
		return nil
	}
	timing := keepalive.Timing{Interval: p.KeepAlive.Interval}
	// One unanswered keep-alive fails the flow, and its wait comes out of
	// the interval (WithinInterval): a flow that dies at any moment is
	// reported within one keep-alive interval. A lost packet does not fail
	// it: the keep-alive is retransmitted inside its wait (a STUN Binding
	// on RFC 8489's schedule from 500 ms, OPTIONS after T1, 2·T1, ...).
	cfg := keepalive.KeeperConfig{
		Kind: p.KeepAlive.Kind, Timing: timing, Timeout: flowWait, WithinInterval: true,
		Clock: a.cfg.Clock, Logger: a.cfg.Logger, OnEvent: a.flowEvent,
	}
	switch p.KeepAlive.Kind {
	case keepalive.STUN:
		cfg.Binder, cfg.Server = learningBinder{a}, a.cfg.Registrar
	default:
		cfg.Send = func(b []byte) error {
			_, err := a.cfg.SIP.WriteTo(b, net.UDPAddrFromAddrPort(a.cfg.Registrar))
			return err
		}
		sentBy := p.Contact
		cfg.Request = keepalive.OptionsBuilder(sipmsg.OptionsRequest{
			RequestURI: "sip:" + a.cfg.Domain, From: a.cfg.AOR, SentBy: sentBy, Branch: a.kaBranch,
			CallID: randHex(8) + "@sipnat-ka", UserAgent: a.cfg.UserAgent,
		})
	}
	k, err := keepalive.NewKeeper(cfg)
	if err != nil {
		return fmt.Errorf("agent: keep-alive: %w", err)
	}
	mks := make([]*keepalive.Keeper, len(p.Media))
	var server = p.NAT
	for i, m := range p.Media {
		if !m.KeepAlive || server == nil {
			continue
		}
		mk, err := keepalive.NewKeeper(keepalive.KeeperConfig{
			Kind: keepalive.STUN, Binder: mediaBinder{a, i}, Server: server.Server, Timing: timing,
			Timeout: 2 * time.Second, Clock: a.cfg.Clock, Logger: a.cfg.Logger,
		})
		if err != nil {
			return fmt.Errorf("agent: media keep-alive: %w", err)
		}
		mks[i] = mk
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	a.keeper, a.mediaKeepers = k, mks
	a.mu.Unlock()
	k.Start()
	for _, mk := range mks {
		if mk != nil {
			mk.Start()
		}
	}
	return nil
}

// flowWait is the longest a keep-alive to the registrar waits for its
// answer; keepalive.KeeperConfig.WithinInterval shortens it to the RTO of
// the answers' round trips (at least 1 s) and 2/5 of the interval.
const flowWait = 2 * time.Second

// keepAliveAnswered takes the answer m, from from, to an OPTIONS
// keep-alive: any answer shows the path works; a 430 Flow Failed from the
// registrar says it lost the flow (RFC 5626 §5.3: it restarted, say), so
// requests for the UA cannot come back until it registers again (§4.5);
// else the answer's received/rport is where the registrar sees the flow.
func (a *Agent) keepAliveAnswered(m *sipmsg.Message, from netip.AddrPort) {
	a.mu.Lock()
	k := a.keeper
	a.mu.Unlock()
	if k != nil {
		k.Answer()
	}
	if callerconn.Unmap(from) != a.cfg.Registrar {
		return
	}
	if m.StatusCode() == sipmsg.StatusFlowFailed {
		a.emit(Event{Kind: FlowFailed, Reason: "the registrar " + a.cfg.Registrar.String() +
			" answered a keep-alive with 430 Flow Failed: it lost the flow; register again"})
		return
	}
	if pub, ok := m.PublicAddr(); ok {
		a.learn(pub, "a keep-alive answer")
	}
}

// learningBinder runs the STUN keep-alives to the registrar on the SIP
// socket and learns from every answer: the registrar's view of the flow,
// compared with what its REGISTER answers said.
type learningBinder struct{ a *Agent }

func (b learningBinder) Binding(ctx context.Context, server netip.AddrPort) (netip.AddrPort, error) {
	mapped, err := b.a.sipSTUN.Binding(ctx, server)
	if err == nil {
		b.a.learn(mapped, "a keep-alive answer")
	}
	return mapped, err
}

func (a *Agent) flowEvent(e keepalive.Event) {
	switch e.Kind {
	case keepalive.FlowFailed:
		a.emit(Event{Kind: FlowFailed, Reason: "keep-alives to the registrar " + a.cfg.Registrar.String() + " got no answer: " + e.String()})
	case keepalive.Recovered:
		a.emit(Event{Kind: FlowRecovered, Reason: "the flow to the registrar " + a.cfg.Registrar.String() + " answers again: register again"})
	}
}

// mediaBinder runs the STUN keep-alives of media socket i and follows
// every answer: a public address other than the plan's is the one the
// next SDP must name.
type mediaBinder struct {
	a *Agent
	i int
}

func (b mediaBinder) Binding(ctx context.Context, server netip.AddrPort) (netip.AddrPort, error) {
	mapped, err := b.a.mediaSTUN[b.i].Binding(ctx, server)
	if err == nil {
		b.a.mediaMoved(b.i, mapped)
	}
	return mapped, err
}

func (a *Agent) mediaMoved(i int, mapped netip.AddrPort) {
	var evs []Event
	a.mu.Lock()
	if p := a.plan; p != nil && !a.closed && i < len(p.Media) && p.Media[i].From == FromSTUN && p.Media[i].Public != mapped {
		prev := p.Media[i].Public
		p.Media[i].Public = mapped
		evs = append(evs, Event{Kind: MediaAddressChanged, Media: i, Address: mapped, Previous: prev,
			Reason: fmt.Sprintf("media socket %d moved from %s to %s", i, prev, mapped)})
		if se, ok := a.shortenLocked(fmt.Sprintf("a STUN keep-alive found media socket %d moved from %s to %s", i, prev, mapped)); ok {
			evs = append(evs, se)
		}
	}
	a.mu.Unlock()
	a.emit(evs...)
}

// shortenLocked halves the keep-alive interval of every flow after the NAT
// moved a binding the keep-alives should have held (down to
// binding.MinKeepAlive); a.mu is held.
func (a *Agent) shortenLocked(why string) (Event, bool) {
	p := a.plan
	if p == nil || p.KeepAlive.Kind == 0 || p.KeepAlive.Interval <= binding.MinKeepAlive {
		return Event{}, false
	}
	d := max(p.KeepAlive.Interval/2, binding.MinKeepAlive)
	p.KeepAlive.Interval = d
	p.KeepAlive.Reason += fmt.Sprintf("; shortened to %v because %s", d, why)
	t := keepalive.Timing{Interval: d}
	if a.keeper != nil {
		a.keeper.SetTiming(t)
	}
	for _, mk := range a.mediaKeepers {
		if mk != nil {
			mk.SetTiming(t)
		}
	}
	return Event{Kind: KeepAliveShortened, Interval: d.Milliseconds(),
		Reason: fmt.Sprintf("%s: the binding expired between keep-alives; keep-alives now every %v", why, d)}, true
}
