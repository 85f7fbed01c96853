package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/ipaddr"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sdp"
	"github.com/sipnat/sipnat/sipmsg"
)

// Agent is the NAT part of a SIP user agent: it runs STUN on the UA's own
// sockets, asks the gateway for port mappings, decides a Plan, keeps the
// flow to the registrar open and reports what the SIP stack must act on.
// It owns no socket and no SIP dialog. Make one with New, wire
// HandlePacket and HandleMediaPacket into the read loops, then Start.
// All methods are safe for concurrent use.
type Agent struct {
	cfg       Config
	clk       clock.Clock
	log       *slog.Logger
	local     netip.AddrPort
	sipSTUN   *nat.Client
	mediaSTUN []*nat.Client
	kaBranch  string
	stunIn    atomic.Int64 // STUN packets the SIP socket's loop handed in

	mu           sync.Mutex
	plan         *Plan
	mapper       *discovery.Mapper
	keeper       *keepalive.Keeper
	mediaKeepers []*keepalive.Keeper
	flowPublic   netip.AddrPort // where the registrar last saw the SIP flow
	relays       []MediaRelay   // media relays by socket, when the plan uses them
	latched      map[netip.AddrPort]bool
	started      bool
	closed       bool
	nat64        netip.Prefix     // Config.NAT64, or what DetectNAT64 found
	nat64Found   *discovery.NAT64 // what DetectNAT64 found (Plan.NAT64)
}

// New checks cfg and returns an agent that has sent nothing yet.
func New(cfg Config) (*Agent, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Domain == "" {
		cfg.Domain = cfg.Registrar.Addr().String()
	}
	if cfg.AOR == "" {
		cfg.AOR = "sip:keepalive@" + cfg.Domain
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "sipnat"
	}
	if cfg.MappingLifetime <= 0 {
		cfg.MappingLifetime = time.Hour
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{cfg: cfg, clk: clock.OrSystem(cfg.Clock), log: log, local: callerconn.AddrPortOf(cfg.SIP.LocalAddr()),
		kaBranch: sipmsg.BranchMagic + "-sipnat-ka-" + randHex(4), nat64: cfg.NAT64}
	stunCfg := nat.ClientConfig{CallerReads: true, Clock: cfg.Clock, Logger: cfg.Logger}
	a.sipSTUN = nat.NewClient(cfg.SIP, stunCfg)
	for _, m := range cfg.Media {
		a.mediaSTUN = append(a.mediaSTUN, nat.NewClient(m, stunCfg))
	}
	return a, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// HandlePacket is what the SIP socket's read loop calls first with every
// packet: it takes STUN answers, CRLF keep-alive noise and the answers to
// its own OPTIONS keep-alives (true), and leaves everything else to the
// SIP stack (false). b is not retained.
func (a *Agent) HandlePacket(b []byte, from netip.AddrPort) bool {
	if nat.IsSTUN(b) {
		a.stunIn.Add(1)
		return a.sipSTUN.HandlePacket(b, from)
	}
	if len(bytes.Trim(b, "\r\n")) == 0 {
		return true
	}
	if !bytes.HasPrefix(b, []byte("SIP/2.0 ")) || !bytes.Contains(b, []byte(a.kaBranch)) {
		return false
	}
	var m sipmsg.Message
	if m.Parse(b) != nil {
		return false
	}
	v, err := m.ParseTopVia()
	if err != nil || !v.HasBranch || !bytes.HasPrefix(v.Branch.Value.In(m.Bytes()), []byte(a.kaBranch)) {
		return false
	}
	a.keepAliveAnswered(&m, from)
	return true
}

// HandleMediaPacket is what media socket i's read loop calls first with
// every packet. It returns the media for the caller and where it came
// from: b and from as they are for direct RTP, RTCP and anything else not
// the agent's; the payload and the peer for media the relay brought
// (aliasing b); nil for what the agent took (STUN answers of its probes
// and keep-alives, the relay's own messages). It does not allocate for
// relayed or direct RTP.
func (a *Agent) HandleMediaPacket(i int, b []byte, from netip.AddrPort) (media []byte, src netip.AddrPort) {
	if i < 0 || i >= len(a.mediaSTUN) {
		return b, from
	}
	if r := a.relay(i); r != nil {
		if p, peer, ok := r.HandlePacket(b, from); ok {
			return p, peer
		}
		if !nat.IsSTUN(b) {
			a.latch(i, r, from)
		}
	}
	if nat.IsSTUN(b) && a.mediaSTUN[i].HandlePacket(b, from) {
		return nil, netip.AddrPort{}
	}
	return b, from
}

// BlockedAfter is how long Start waits for any STUN answer on the SIP
// socket before it takes the silence for UDP blocked (ErrSilent), instead
// of waiting out discovery's whole timeout: long enough for five sends of
// each first Binding on RFC 8489's schedule (0, 0.5, 1.5, 3.5, 7.5 s).
const BlockedAfter = 8 * time.Second

// ErrSilent is in the plan's NATErr when no STUN server answered anything
// within BlockedAfter.
var ErrSilent = errors.New("agent: no STUN answer on the SIP socket")

// ErrStarted is returned by a second Start; ErrClosed after Close.
var (
	ErrStarted = errors.New("agent: already started")
	// ErrNotAnswer: a message handed in as the answer to the agent's
	// REGISTER is not one (another source, branch or CSeq); it is ignored.
	ErrNotAnswer = errors.New("agent: not the answer to our REGISTER")
	ErrClosed    = errors.New("agent: closed")
)

// Start discovers the NAT (STUN on the SIP and media sockets, the binding
// lifetime up to Config.LifetimeMax, the gateway's port mappings), decides
// the Plan and starts the keep-alives. The read loops must already hand
// packets in: if a STUN request the agent sends to its own SIP socket does
// not come back through HandlePacket, Start fails at once with an error
// matching nat.ErrSharedSocket. It returns the plan; UDP being blocked is
// a plan (Decision Relay, no incoming calls), not an error.
func (a *Agent) Start(ctx context.Context) (*Plan, error) {
	a.mu.Lock()
	switch {
	case a.closed:
		a.mu.Unlock()
		return nil, ErrClosed
	case a.started:
		a.mu.Unlock()
		return nil, ErrStarted
	}
	a.started = true
	a.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := a.sipSTUN.CheckDelivery(cctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("agent: start: %w", err)
	}
	a.detectNAT64(ctx)
	o := a.observe(ctx)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("agent: start: %w", err)
	}
	p := Decide(o)
	a.mu.Lock()
	p.NAT64 = a.nat64Found
	a.mu.Unlock()
	a.relayMedia(ctx, p)
	a.mu.Lock()
	a.plan = p
	a.mu.Unlock()
	if err := a.startKeepAlives(p); err != nil {
		return nil, err
	}
	return p.clone(), nil
}

// observe runs every probe the configuration allows, concurrently where
// they do not depend on each other.
func (a *Agent) observe(ctx context.Context) Observations {
	cfg := &a.cfg
	o := Observations{Local: a.local, STUNServers: len(cfg.STUN) > 0 && cfg.allowed(STUN), LifetimeAsked: cfg.LifetimeMax,
		Disable: cfg.Disable, Relay: cfg.Relay, Media: make([]MediaPlan, len(cfg.Media))}
	for i, m := range cfg.Media {
		o.Media[i] = MediaPlan{Local: callerconn.AddrPortOf(m.LocalAddr())}
	}
	var wg sync.WaitGroup
	var silent atomic.Bool
	if o.STUNServers {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second+cfg.LifetimeMax)
		defer cancel()
		// UDP blocked: silence has no round-trip time to derive a shorter
		// wait from, and discovery would wait out dctx. When nothing STUN
		// at all came back in BlockedAfter (five sends of each first
		// Binding on RFC 8489's schedule), it is cut short.
		seen := a.stunIn.Load()
		cut := a.clk.AfterFunc(BlockedAfter, func() {
			if a.stunIn.Load() == seen {
				silent.Store(true)
				cancel()
			}
		})
		defer cut.Stop()
		wg.Add(2)
		go func() {
			defer wg.Done()
			o.NAT, o.NATErr = a.sipSTUN.Discover(dctx, nat.DiscoverConfig{
				Servers: cfg.STUN, LifetimeMax: cfg.LifetimeMax,
				ListenPacket: cfg.ListenPacket, Clock: cfg.Clock, Logger: cfg.Logger, NAT64: a.nat64Prefix(),
			})
			if o.NATErr != nil && o.NAT != nil && o.NAT.Method != nat.MethodNone {
				o.NATErr = nil // what ctx cut short is in the result
			}
		}()
		go func() { // does the registrar answer STUN on its SIP port?
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := a.sipSTUN.Binding(rctx, cfg.Registrar)
			o.RegistrarSTUN = err == nil
		}()
	}
	var probe discovery.ProbeResult
	var probeErr error
	if cfg.allowed(PortMapping) {
		a.mu.Lock()
		a.mapper = discovery.NewMapper(discovery.MapperConfig{
			Gateway: cfg.Gateway, LocalAddr: a.local.Addr(), Lifetime: cfg.MappingLifetime, Description: "sipnat " + cfg.UserAgent,
			DialContext: cfg.DialContext, ListenPacket: cfg.ListenPacket, Clock: cfg.Clock, Logger: cfg.Logger,
			PMPTimeout: 2 * time.Second, UPnPTimeout: 2 * time.Second, OnEvent: a.mappingEvent,
		})
		a.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			probe, probeErr = a.mapper.Probe(mctx)
		}()
	}
	wg.Wait()
	if silent.Load() && o.NATErr != nil {
		o.NATErr = fmt.Errorf("%w in %v (%w)", ErrSilent, BlockedAfter, o.NATErr)
	}

	obs := discovery.Observations{Local: a.local}
	if o.NAT != nil && o.NAT.Public.IsValid() {
		obs.STUN = o.NAT.Public
	}
	if a.mapper != nil {
		o.Probe = &probe
		if probeErr == nil && (probe.PCP || probe.NATPMP || probe.UPnP) {
			a.mapPorts(ctx, &obs, &o, probe)
		} else if probeErr != nil {
			obs.Errors = append(obs.Errors, "gateway: "+probeErr.Error())
		}
	}
	o.Choice = discovery.Reconcile(obs)
	if o.NAT != nil && obs.Gateway.IsValid() {
		o.NAT.CompareGateway(obs.Gateway)
	}
	if o.Choice.Source != discovery.SourceMapping && a.mapper != nil {
		a.unmapAll(ctx, o.Media)
	}
	if o.Choice.Source != discovery.SourceMapping && o.NAT != nil && o.NAT.Mapping != nat.None && o.NAT.Mapping != nat.Blocked && cfg.allowed(STUN) {
		a.mediaSTUNAddrs(ctx, o.NAT.Server, o.Media)
	}
	return o
}

// AppendPeerSDP appends a peer's SDP body to dst as the UA's media stack
// should read it: unchanged, or, with Config.NAT64 set, with every IPv4
// address in c=, o= and a=rtcp replaced by its synthesised IPv6 address
// (sdp.Options.NAT64, byte-exact elsewhere), so the stack sends its media
// where the NAT64 translates.
func (a *Agent) AppendPeerSDP(dst, body []byte) ([]byte, error) {
	n64 := a.nat64Prefix()
	if !n64.IsValid() {
		return append(dst, body...), nil
	}
	out, _, err := sdp.AppendRewrite(dst, body, &sdp.Options{NAT64: n64, Origin: true, AllowICE: true})
	if err != nil {
		return append(dst[:len(dst):len(dst)], body...), fmt.Errorf("agent: peer SDP for NAT64: %w", err)
	}
	return out, nil
}

// Reach returns the address to send to for a peer's address ap that SIP
// or SDP named: ap itself, or, with Config.NAT64 set, the synthesised IPv6
// address (RFC 6052) of an IPv4 ap, which an IPv6-only UA reaches through
// the NAT64.
func (a *Agent) Reach(ap netip.AddrPort) netip.AddrPort {
	n64 := a.nat64Prefix()
	if !n64.IsValid() || !ap.Addr().Unmap().Is4() {
		return ap
	}
	s, err := ipaddr.SynthesizeNAT64(n64, ap.Addr())
	if err != nil {
		return ap
	}
	return netip.AddrPortFrom(s, ap.Port())
}

// mapPorts asks the gateway to map the SIP port and every media port.
func (a *Agent) mapPorts(ctx context.Context, obs *discovery.Observations, o *Observations, probe discovery.ProbeResult) {
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	obs.Gateway, obs.GatewayFrom = probe.External, probe.ExternalFrom
	m, err := a.mapper.Map(mctx, "udp", a.local.Port())
	if err != nil {
		obs.Errors = append(obs.Errors, fmt.Sprintf("mapping of the SIP port %d: %v", a.local.Port(), err))
		return
	}
	obs.Mapping = &m
	for i := range o.Media {
		mm, err := a.mapper.Map(mctx, "udp", o.Media[i].Local.Port())
		if err != nil {
			o.Media[i].Error = fmt.Sprintf("the gateway refused a mapping of port %d: %v", o.Media[i].Local.Port(), err)
			continue
		}
		o.Media[i].Mapping = &mm
	}
}

func (a *Agent) unmapAll(ctx context.Context, media []MediaPlan) {
	a.mu.Lock()
	m := a.mapper
	a.mapper = nil
	a.mu.Unlock()
	for i := range media {
		media[i].Mapping = nil
	}
	_ = m.Close() // deletes whatever it mapped
}

// mediaSTUNAddrs asks server for each media socket's public address.
func (a *Agent) mediaSTUNAddrs(ctx context.Context, server netip.AddrPort, media []MediaPlan) {
	var wg sync.WaitGroup
	for i := range media {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			mapped, err := a.mediaSTUN[i].Binding(bctx, server)
			if err != nil {
				media[i].Error = fmt.Sprintf("STUN on the media socket failed: %v", err)
				return
			}
			media[i].Public, media[i].From = mapped, FromSTUN
		}()
	}
	wg.Wait()
}

// Plan returns a copy of the current plan (nil before Start decided).
func (a *Agent) Plan() *Plan {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.plan == nil {
		return nil
	}
	return a.plan.clone()
}

// Contact returns the address for Contact and Via sent-by now: the plan's,
// or the SIP socket's own before Start decided.
func (a *Agent) Contact() netip.AddrPort {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.plan == nil {
		return a.local
	}
	return a.plan.Contact
}

// KeepAlives returns how many keep-alives went to the registrar so far.
func (a *Agent) KeepAlives() uint64 {
	a.mu.Lock()
	k := a.keeper
	a.mu.Unlock()
	if k == nil {
		return 0
	}
	return k.Sent()
}

// AppendSDP appends body, an SDP written with the media sockets' local
// addresses as any SIP stack writes it, rewritten to the plan's public
// media addresses (c=, o=, m= ports, a=rtcp), to dst. Before Start, or
// with public addresses equal to the local ones, body is copied as is.
func (a *Agent) AppendSDP(dst, body []byte) ([]byte, error) {
	a.mu.Lock()
	var opts *sdp.Options
	if a.plan != nil {
		opts = sdpOptions(a.plan.Media)
	}
	a.mu.Unlock()
	if opts == nil {
		return append(dst, body...), nil
	}
	out, _, err := sdp.AppendRewrite(dst, body, opts)
	if err != nil {
		return append(dst[:len(dst):len(dst)], body...), fmt.Errorf("agent: SDP rewrite: %w", err)
	}
	return out, nil
}

func sdpOptions(media []MediaPlan) *sdp.Options {
	var o *sdp.Options
	for _, m := range media {
		if m.Public == m.Local || !m.Public.IsValid() {
			continue
		}
		if o == nil {
			o = &sdp.Options{Public: m.Public.Addr(), Origin: true, All: true}
		}
		o.Ports = append(o.Ports, sdp.PortMap{Local: m.Local.Port(), Public: m.Public.Port()})
	}
	return o
}

// ObserveRegister feeds the registrar's answer to a REGISTER back in:
// request is the REGISTER as sent, response the answer as received from
// from. It reports the signs of a SIP ALG on the path (sipmsg.DetectALG,
// noted in the plan), and follows the registrar's rport: a public address
// other than the Contact makes a PublicAddressChanged event, and one that
// moved since the last answer shortens the keep-alive interval. Only an
// answer from the registrar's address that answers request (same Via
// branch and CSeq, sipmsg.Message.Answers) is learned from: a third party
// cannot move the UA's Contact with a forged one; nor is one whose
// received= a SIP ALG rewrote to a private address (sipmsg.ALGReceivedPrivate).
func (a *Agent) ObserveRegister(request, response []byte, from netip.AddrPort) (sipmsg.ALGReport, error) {
	var req, resp sipmsg.Message
	if err := req.Parse(request); err != nil {
		return sipmsg.ALGReport{}, fmt.Errorf("agent: REGISTER: %w", err)
	}
	if err := resp.Parse(response); err != nil {
		return sipmsg.ALGReport{}, fmt.Errorf("agent: REGISTER answer: %w", err)
	}
	if callerconn.Unmap(from) != a.cfg.Registrar {
		return sipmsg.ALGReport{}, fmt.Errorf("%w: REGISTER answer from %v, not the registrar %v", ErrNotAnswer, from, a.cfg.Registrar)
	}
	if !resp.Answers(&req) { // a forged answer: no branch of ours, or another CSeq
		return sipmsg.ALGReport{}, fmt.Errorf("%w: REGISTER answer with another branch or CSeq than the REGISTER", ErrNotAnswer)
	}
	rep, err := sipmsg.DetectALG(&req, &resp, a.cfg.Registrar)
	if err == nil && rep.Tampered() {
		a.mu.Lock()
		if a.plan != nil {
			a.plan.note("a SIP ALG on the path rewrote the REGISTER (%s): turn it off in the router", rep.Signs)
		}
		a.mu.Unlock()
	}
	// A private received= from a public registrar is the ALG's rewrite of
	// the answer, not where the registrar saw us: learning it would move
	// the Contact there and the next keep-alive answer back, for ever.
	if resp.StatusCode() >= 200 && resp.StatusCode() < 300 && rep.Signs&sipmsg.ALGReceivedPrivate == 0 {
		if pub, ok := resp.PublicAddr(); ok {
			a.learn(pub, "the REGISTER answer")
		}
	}
	return rep, err
}

// learn follows the public address the registrar reports for the SIP
// flow: a move since the last report means the binding expired between
// keep-alives (or the NAT restarted), so the interval is halved; with
// Learn, a Contact that differs is replaced and reported.
func (a *Agent) learn(pub netip.AddrPort, what string) {
	var evs []Event
	var ping []*keepalive.Keeper
	a.mu.Lock()
	p := a.plan
	if p == nil || a.closed {
		a.mu.Unlock()
		return
	}
	prevFlow := a.flowPublic
	a.flowPublic = pub
	if prevFlow.IsValid() && prevFlow != pub {
		if e, ok := a.shortenLocked(fmt.Sprintf("%s says the registrar now sees the SIP flow at %s, not %s", what, pub, prevFlow)); ok {
			evs = append(evs, e)
		}
		// The NAT moved the SIP flow: the media bindings likely moved too;
		// ask now (after the lock is released), before the next call's SDP
		// names a stale address.
		ping = a.mediaKeepers
	}
	if p.Learn && pub != p.Contact {
		prev := p.Contact
		p.Contact, p.ContactFrom = pub, FromRport
		evs = append(evs, Event{Kind: PublicAddressChanged, Address: pub, Previous: prev,
			Reason: fmt.Sprintf("%s says the registrar sees us at %s, not %s", what, pub, prev)})
	}
	a.mu.Unlock()
	for _, mk := range ping {
		if mk != nil {
			go mk.PingNow() // it blocks for the answer; Close stops it
		}
	}
	a.emit(evs...)
}

func (a *Agent) emit(evs ...Event) {
	for _, e := range evs {
		a.log.Debug("agent: event", "event", e.String())
		if a.cfg.OnEvent != nil {
			a.cfg.OnEvent(e)
		}
	}
}

func (a *Agent) mappingEvent(e discovery.Event) {
	switch e.Kind {
	case discovery.EventLost:
		a.emit(Event{Kind: MappingLost, Previous: e.Mapping.External, Reason: e.String()})
	case discovery.EventAddressChanged:
		a.mu.Lock()
		var evs []Event
		if p := a.plan; p != nil && p.ContactFrom == FromMapping && e.Mapping.Internal.Port() == a.local.Port() {
			prev := p.Contact
			p.Contact = e.Mapping.External
			evs = append(evs, Event{Kind: PublicAddressChanged, Address: p.Contact, Previous: prev, Reason: "the gateway moved the SIP port's mapping: " + e.String()})
		}
		a.mu.Unlock()
		a.emit(evs...)
	}
}

// Close stops the keep-alives, deletes the port mappings and stops the
// STUN clients. It never closes the caller's sockets.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	k, mks, m := a.keeper, a.mediaKeepers, a.mapper
	a.mu.Unlock()
	if k != nil {
		k.Stop()
	}
	for _, mk := range mks {
		if mk != nil {
			mk.Stop()
		}
	}
	if m != nil {
		_ = m.Close()
	}
	a.closeRelays()
	_ = a.sipSTUN.Close()
	for _, c := range a.mediaSTUN {
		_ = c.Close()
	}
	return nil
}
