package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/sipnat/sipnat/internal/callerconn"
)

// DualStack is the NAT part of a dual-stack UA: an Agent per family, each
// on the UA's sockets of that family, and the per-call family choice
// (ChooseFamily) between them. Make one with NewDualStack, wire each
// agent's HandlePacket and HandleMediaPacket into its sockets' read loops
// (Agent), then Start. All methods are safe for concurrent use.
type DualStack struct {
	v4, v6 *Agent
	nat64  netip.Prefix
	// proxy are the registrar's addresses of both families.
	proxy []netip.Addr

	mu   sync.Mutex
	plan *DualPlan
}

// DualPlan is what a DualStack decided at Start: each family's plan, and
// the family to register (and send SIP) over. Its JSON form carries
// durations in milliseconds.
type DualPlan struct {
	IPv4 *Plan `json:"ipv4,omitempty"` // the IPv4 agent's plan; nil without one
	// IPv4Err says why there is no IPv4 plan (no agent, Start failed).
	IPv4Err string `json:"ipv4_error,omitempty"`
	IPv6    *Plan  `json:"ipv6,omitempty"`       // the IPv6 agent's plan; nil without one
	IPv6Err string `json:"ipv6_error,omitempty"` // why there is no IPv6 plan
	// Register is the family of the registration, chosen with the
	// registrar as the far side: the Contact and Via of out-of-dialog SIP
	// are that agent's.
	Register FamilyChoice `json:"register"`
}

// String is the plan for a person, several lines.
func (d *DualPlan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "register over %s", d.Register)
	for _, f := range []struct {
		name string
		p    *Plan
		err  string
	}{{"IPv4", d.IPv4, d.IPv4Err}, {"IPv6", d.IPv6, d.IPv6Err}} {
		if f.p == nil {
			fmt.Fprintf(&b, "\n%s: none (%s)", f.name, f.err)
			continue
		}
		fmt.Fprintf(&b, "\n%s: %s", f.name, strings.ReplaceAll(f.p.String(), "\n", "\n  "))
	}
	return b.String()
}

// ErrFamily is wrapped by NewDualStack when a Config's sockets are not of
// its family.
var ErrFamily = errors.New("agent: wrong address family")

// NewDualStack returns the agents of a dual-stack UA: v4 on its IPv4
// sockets (Registrar the registrar's IPv4 address), v6 on its IPv6 ones
// (Registrar its IPv6 address, or its NAT64-synthesised one with
// Config.NAT64). A Config with no SIP socket leaves that family out.
func NewDualStack(v4, v6 Config) (*DualStack, error) {
	d := &DualStack{nat64: v6.NAT64}
	for _, f := range []struct {
		fam Family
		cfg Config
		a   **Agent
	}{{IPv4, v4, &d.v4}, {IPv6, v6, &d.v6}} {
		if f.cfg.SIP == nil {
			continue
		}
		if got := FamilyOf(callerconn.AddrPortOf(f.cfg.SIP.LocalAddr()).Addr()); got != f.fam {
			return nil, fmt.Errorf("%w: the %s agent's SIP socket is %s", ErrFamily, f.fam, f.cfg.SIP.LocalAddr())
		}
		for i, m := range f.cfg.Media {
			if m != nil && FamilyOf(callerconn.AddrPortOf(m.LocalAddr()).Addr()) != f.fam {
				return nil, fmt.Errorf("%w: the %s agent's media socket %d is %s", ErrFamily, f.fam, i, m.LocalAddr())
			}
		}
		a, err := New(f.cfg)
		if err != nil {
			return nil, fmt.Errorf("%s agent: %w", f.fam, err)
		}
		*f.a = a
		d.proxy = append(d.proxy, f.cfg.Registrar.Addr().Unmap())
	}
	if d.v4 == nil && d.v6 == nil {
		return nil, fmt.Errorf("%w: no SIP socket of either family", ErrConfig)
	}
	return d, nil
}

// Agent returns the agent of family f (nil: none).
func (d *DualStack) Agent(f Family) *Agent {
	switch f {
	case IPv4:
		return d.v4
	case IPv6:
		return d.v6
	}
	return nil
}

// Start starts both agents at once and chooses the registration's family.
// A family whose agent fails to start is left out of every choice (its
// error is in the plan); Start fails only when both do.
func (d *DualStack) Start(ctx context.Context) (*DualPlan, error) {
	p := &DualPlan{IPv4Err: "the UA has no IPv4 socket", IPv6Err: "the UA has no IPv6 socket"}
	var wg sync.WaitGroup
	var err4, err6 error
	for _, f := range []struct {
		a    *Agent
		plan **Plan
		err  *error
	}{{d.v4, &p.IPv4, &err4}, {d.v6, &p.IPv6, &err6}} {
		if f.a == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			*f.plan, *f.err = f.a.Start(ctx)
		}()
	}
	wg.Wait()
	if d.v4 != nil {
		p.IPv4Err = errString(err4)
	}
	if d.v6 != nil {
		p.IPv6Err = errString(err6)
	}
	if p.IPv4 == nil && p.IPv6 == nil {
		return nil, fmt.Errorf("agent: dual-stack start: IPv4: %s; IPv6: %s", p.IPv4Err, p.IPv6Err)
	}
	p.Register = ChooseFamily(FamilyInputs{V4: p.IPv4, V6: p.IPv6, NAT64: d.nat64, Proxy: d.proxy})
	d.mu.Lock()
	d.plan = p
	d.mu.Unlock()
	return p, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Plan returns the current plans (nil before Start): each agent's plan as
// it is now, and the registration's family as Start chose it.
func (d *DualStack) Plan() *DualPlan {
	d.mu.Lock()
	p := d.plan
	d.mu.Unlock()
	if p == nil {
		return nil
	}
	c := *p
	if d.v4 != nil && c.IPv4 != nil {
		c.IPv4 = d.v4.Plan()
	}
	if d.v6 != nil && c.IPv6 != nil {
		c.IPv6 = d.v6.Plan()
	}
	return &c
}

// Choose picks the family of one call from the agents' current plans:
// for an incoming offer (or an answer) peerSDP is the peer's body; for an
// outgoing call's offer peerSDP is nil and target the Request-URI host
// (ResolveTarget: an IP literal, or a name and its DNS addresses), with
// the registrar as the last hint. Write the SDP, and where the transport
// allows Contact and Via, with the agent of the returned family.
func (d *DualStack) Choose(peerSDP []byte, target CallTarget) FamilyChoice {
	in := FamilyInputs{NAT64: d.nat64, Peer: PeerAddrs(peerSDP), Target: target, Proxy: d.proxy}
	if p := d.Plan(); p != nil {
		in.V4, in.V6 = p.IPv4, p.IPv6
	}
	return ChooseFamily(in)
}

// Close closes both agents. It never closes the caller's sockets.
func (d *DualStack) Close() error {
	for _, a := range []*Agent{d.v4, d.v6} {
		if a != nil {
			_ = a.Close()
		}
	}
	return nil
}
