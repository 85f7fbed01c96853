package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/outbound"
	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/rtpengine/sipedge"
	"github.com/sipnat/sipnat/sipmsg"
)

// Proxy is a stateless SIP edge proxy for UAs behind NAT in front of a
// registrar/proxy that knows nothing about NAT ("upstream"). It does what
// Kamailio's nathelper does inside the registrar:
//
//   - requests from UAs: received=/rport= in their Via (force_rport), the
//     nat_uac_test("19") heuristics, and when they fire a Contact alias
//     (add_contact_alias) or rewrite (fix_nated_contact); Path on REGISTER
//     (RFC 3327) and Record-Route on dialog-creating requests so that
//     requests for the UA come back through the proxy; its own Via;
//   - requests from upstream: its own Route removed, the Request-URI's
//     alias restored (handle_ruri_alias) and the request sent to the
//     address the UA's packets came from;
//   - responses: its own Via removed, sent to the next Via's received/rport;
//   - NATed registrations: the binding kept open with CRLF pings
//     (keepalive.Scheduler, nathelper's natping);
//   - RFC 5626 edge (outbound.Edge): UDP, TCP and TLS; pongs to CRLF
//     pings and answers to STUN on its SIP ports; a flow token in the Path
//     of each REGISTER (;ob when the UA supports outbound), a Flow-Timer in
//     the 2xx that says Require: outbound; requests for a UA sent over the
//     UA's own connection, and 430 Flow Failed upstream when it is gone.
//
// Without a media relay it relays signalling only. With one (Config.Relay:
// rtpengine) it also does the media half of the OpenSER NAT traversal
// algorithm (package sipedge): calls with a party behind NAT get their SDP
// through rtpengine, calls between public peers are left alone, and when
// rtpengine is down calls go on with signalling only. The relay's requests
// run inline with their message: a silent instance delays it by the
// client's retransmissions (0.5 + 1 + 2 s by default), once, before the Set
// leaves that instance out.
type Proxy struct {
	conn     net.PacketConn
	self     netip.AddrPort // address in Via, Path and Record-Route
	upstream netip.AddrPort
	rewrite  bool // fix_nated_contact instead of alias
	log      *slog.Logger
	pings    *keepalive.Scheduler
	ping     time.Duration
	alt      family        // the other family's socket and address (zero: single-stack)
	rrOne    [2][2][]byte  // Record-Route values by [family (0 Self's, 1 AltSelf's)][nat]
	rrTwo    [2][2][]byte  // double Record-Route values by [the first URI's family][nat]
	crossed  atomic.Uint64 // SDP sent to a UA of the other family
	relay    *sipedge.Relay
	dest     sipmsg.DestPolicy
	trailing atomic.Uint64 // octets after Content-Length dropped from datagrams
	branches *sipmsg.Signer
	foreign  atomic.Uint64 // responses with the proxy's Via but not its branch
	edge     *outbound.Edge
	cfg      Config
}

// Config configures a Proxy.
type Config struct {
	Conn     net.PacketConn // the socket the proxy receives on (UAs and upstream)
	Self     netip.AddrPort // the proxy's address as UAs and upstream reach it
	Upstream netip.AddrPort // the registrar / proxy behind
	Rewrite  bool           // rewrite Contact to the source instead of adding ;alias
	Ping     time.Duration  // interval of CRLF pings to NATed contacts; 0 disables them
	Logger   *slog.Logger   // nil: discard
	// Allow are private ranges requests may be sent to (an alias or
	// Request-URI naming them); loopback, the proxy's and upstream's
	// addresses and other private ranges are refused (sipmsg.DestPolicy).
	Allow []netip.Prefix
	// AliasKey, when set, signs the aliases the proxy writes and follows
	// only signed ones (sipmsg.Fix.AliasKey), so no request can make it
	// send anywhere a UA was not seen; proxies behind one registrar share it.
	AliasKey []byte
	// ViaKey signs the branch of the proxy's own Via (sipmsg.Signer), so
	// that it forwards only responses to requests it forwarded: one whose
	// top Via names the proxy with a branch it did not make (forged, or
	// stale) is dropped and counted (Proxy.ForeignResponses). Nil: a
	// random key, so responses to requests forwarded before a restart
	// are dropped too; proxies that answer at one address share it.
	ViaKey []byte
	// Relay, when set, relays the media of calls with a party behind NAT
	// through rtpengine; nil relays signalling only.
	Relay *sipedge.Relay
	// TCP and TLS are stream listeners for UAs (nil: none); TLS runs with
	// TLSConfig over TLS's connections.
	TCP, TLS  net.Listener
	TLSConfig *tls.Config
	// FlowTimer is the keep-alive interval the proxy asks outbound UAs for
	// (RFC 5626 Flow-Timer); 0: none.
	FlowTimer time.Duration
	// MaxConnsPerSource bounds the TCP and TLS connections open at once
	// from one source (outbound.EdgeConfig.MaxConnsPerSource; 0: its
	// default, a tenth of its MaxConns).
	MaxConnsPerSource int
	// AltConn and AltSelf make a dual-stack proxy: its UDP socket and
	// address in the other family. Self must then be in Upstream's
	// family (Via, Path and Record-Route towards upstream name it); UAs
	// of AltSelf's family are served on AltConn, with Via and Record-Route
	// in their family (a double Record-Route where a dialog crosses
	// families). Nil: single-stack.
	AltConn net.PacketConn
	AltSelf netip.AddrPort
}

// NewProxy returns a proxy for cfg.
func NewProxy(cfg Config) (*Proxy, error) {
	if cfg.Conn == nil || !cfg.Self.IsValid() || !cfg.Upstream.IsValid() {
		return nil, errors.New("natproxy: Conn, Self and Upstream are required")
	}
	p := &Proxy{conn: cfg.Conn, self: cfg.Self, upstream: cfg.Upstream, rewrite: cfg.Rewrite, log: cfg.Logger, ping: cfg.Ping, cfg: cfg}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	edge, err := outbound.NewEdge(outbound.EdgeConfig{Self: cfg.Self, FlowTimer: cfg.FlowTimer, TLS: cfg.TLSConfig, MaxConnsPerSource: cfg.MaxConnsPerSource,
		Handle: p.handleFlow, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("natproxy: %w", err)
	}
	p.edge = edge
	if err := p.setFamilies(cfg); err != nil {
		return nil, err
	}
	p.relay = cfg.Relay
	p.branches = sipmsg.NewSigner(cfg.ViaKey)
	p.dest = sipmsg.DestPolicy{Self: []netip.Addr{cfg.Self.Addr(), cfg.Upstream.Addr()}, Allow: cfg.Allow, AliasKey: cfg.AliasKey}
	if p.alt.self.IsValid() {
		p.dest.Self = append(p.dest.Self, p.alt.self.Addr())
	}
	if cfg.Ping > 0 {
		s, err := keepalive.NewScheduler(keepalive.SchedulerConfig{
			Send: keepalive.SenderFunc(func(pg keepalive.Ping) error {
				return p.edge.SendTo(pg.Addr, []byte("\r\n\r\n")) // from the UDP socket of the UA's family (Edge.FlowFor)
			}),
			Logger: cfg.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("natproxy: pings: %w", err)
		}
		p.pings = s
	}
	return p, nil
}

// Serve relays messages until ctx ends or a socket fails: the UDP socket
// and the TCP and TLS listeners of the config, through the edge.
func (p *Proxy) Serve(ctx context.Context) error {
	if p.pings != nil {
		defer p.pings.Stop()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	n := 1
	go func() { errc <- p.edge.ServePacket(ctx, p.conn) }()
	if p.alt.conn != nil {
		n++
		go func() { errc <- p.edge.ServePacket(ctx, p.alt.conn) }()
	}
	for _, l := range []struct {
		ln net.Listener
		t  sipmsg.Transport
	}{{p.cfg.TCP, sipmsg.TCP}, {p.cfg.TLS, sipmsg.TLS}} {
		if l.ln != nil {
			n++
			go func() { errc <- p.edge.ServeStream(ctx, l.ln, l.t) }()
		}
	}
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// scratch is one goroutine's working space for handleFlow.
type scratch struct {
	m   sipmsg.Message
	out []byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{out: make([]byte, 0, 4096)} }}

// handleFlow relays one message the edge read on flow from; a request for
// a UA whose flow is gone is answered 430 Flow Failed (RFC 5626 §5.3).
func (p *Proxy) handleFlow(ctx context.Context, from sipmsg.Flow, b []byte) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	out, dst, err := p.Handle(ctx, s.out[:0], &s.m, b, from.Remote)
	s.out = out[:0]
	switch {
	case errors.Is(err, outbound.ErrFlowGone):
		resp, rerr := sipmsg.AppendResponse(nil, &s.m, sipmsg.StatusFlowFailed, "Flow Failed", "", "")
		if rerr == nil {
			_ = p.edge.SendTo(from.Remote, resp)
		}
		p.log.Info("flow gone: 430", "err", err)
		return
	case err != nil:
		p.log.Debug("dropped", "from", from.Remote, "err", err)
		return
	case !dst.IsValid():
		return
	}
	if err := p.edge.SendTo(dst, out); err != nil {
		p.log.Warn("send", "to", dst, "err", err)
	}
}

// TrailingDropped returns how many octets after a Content-Length body the
// proxy dropped (a second request smuggled in a datagram is one).
func (p *Proxy) TrailingDropped() uint64 { return p.trailing.Load() }

// ForeignResponses returns how many responses the proxy dropped because
// their top Via named it with a branch it did not make (Config.ViaKey).
func (p *Proxy) ForeignResponses() uint64 { return p.foreign.Load() }

// errForeign is the error for a response to no request the proxy forwarded.
var errForeign = errors.New("response with the proxy's Via but not its branch: not forwarded")

// branchPrefix starts the branch of the proxy's own Via.
const branchPrefix = "z9hG4bKnp"

// Handle processes one packet received from src and returns what to send
// where (dst invalid: nothing to send). m is scratch space. ctx bounds the
// media relay's requests.
func (p *Proxy) Handle(ctx context.Context, dst []byte, m *sipmsg.Message, pkt []byte, src netip.AddrPort) ([]byte, netip.AddrPort, error) {
	if len(pkt) > 0 && (pkt[0] == '\r' || pkt[0] == '\n' || pkt[0] == 0) {
		return dst, netip.AddrPort{}, nil // keep-alive
	}
	if err := m.Parse(pkt); err != nil {
		return dst, netip.AddrPort{}, err
	}
	if n := m.Trailing(); n > 0 { // RFC 4475 §3.1.1.8: never forwarded
		p.trailing.Add(uint64(n))
		p.log.Warn("octets after Content-Length dropped", "from", src, "octets", n)
	}
	if err := m.Check(); err != nil {
		return dst, netip.AddrPort{}, fmt.Errorf("not forwarded (a UAS answers %d): %w", sipmsg.StatusFor(err), err)
	}
	if !m.IsRequest() {
		return p.response(ctx, dst, m, src)
	}
	if src == p.upstream {
		return p.toUA(ctx, dst, m)
	}
	return p.fromUA(ctx, dst, m, src)
}

// response strips the proxy's Via and sends the response to the next hop;
// a NATed UA's answer gets its Contact fixed and, with a relay, its SDP
// relayed.
func (p *Proxy) response(ctx context.Context, dst []byte, m *sipmsg.Message, src netip.AddrPort) ([]byte, netip.AddrPort, error) {
	v, err := m.ParseTopVia()
	if err != nil {
		return dst, netip.AddrPort{}, err
	}
	b := m.Bytes()
	if sb, ok := v.SentByAddr(b); !ok || !p.isSelf(sb) {
		return dst, netip.AddrPort{}, errors.New("response not for this proxy")
	}
	if !p.branches.OwnBranch(branchPrefix, m) {
		// not a response to a request the proxy forwarded: a forgery, or
		// one from before a restart under another key
		p.foreign.Add(1)
		p.log.Warn("response with a branch the proxy did not make dropped", "status", m.StatusCode(), "from", src)
		return dst, netip.AddrPort{}, errForeign
	}
	var fired sipmsg.NATTest
	if src != p.upstream {
		if fired, err = m.NATTest(src, sipmsg.ContactPrivate, sipmsg.SDPNATCheck); err != nil {
			return dst, netip.AddrPort{}, err
		}
	}
	fix := sipmsg.Fix{SDP: fired != 0, RemoveVia: true, AliasKey: p.dest.AliasKey}
	if fired != 0 {
		fix.Contact = p.contactMode()
	}
	if p.relay != nil {
		body, _, err := p.relay.Response(ctx, nil, m, src, fired != 0, p.uacFamily(m))
		if errors.Is(err, sipedge.ErrForged) {
			return dst, netip.AddrPort{}, err // not an answer to a request the proxy forwarded: dropped (the relay logged and counted it)
		}
		if body != nil {
			fix.Body = sipedge.Replace(body)
		}
	}
	if v, ok := p.edge.AppendFlowTimerValue(nil, m); ok {
		fix.Insert = sipmsg.HeaderValue{Kind: sipmsg.HdrFlowTimer, Value: v}
	}
	to, err := m.ResponseHop()
	if err != nil {
		return dst, netip.AddrPort{}, err
	}
	if to.Addr() != p.upstream.Addr() {
		// anyone can send a response with the proxy's Via on top: its
		// second Via must not make the proxy a relay to loopback, itself
		// or private hosts
		if err := p.dest.Check(to); err != nil {
			return dst, netip.AddrPort{}, fmt.Errorf("response to %s: %w", to, err)
		}
	}
	if to.Addr() != p.upstream.Addr() {
		p.checkFamily(m, to)
	}
	p.log.Info("response", "status", m.StatusCode(), "from", src, "to", to, "nat", fired.String())
	out, err := sipmsg.AppendFix(dst, m, src, &fix)
	return out, to, err
}

func (p *Proxy) contactMode() sipmsg.ContactMode {
	if p.rewrite {
		return sipmsg.ContactRewrite
	}
	return sipmsg.ContactAlias
}

// recordRoute returns the proxy's Record-Route value for a dialog-creating
// request (nil for others) forwarded from a hop at prev to one at next,
// marked when a party is behind NAT: one URI, or both families' when the
// hops' families differ (rrValue).
func (p *Proxy) recordRoute(m *sipmsg.Message, nat bool, prev, next netip.Addr) []byte {
	if !m.IsMethod("INVITE") && !m.IsMethod("SUBSCRIBE") {
		return nil
	}
	if _, ok := m.Get(sipmsg.HdrTo); !ok {
		return nil
	}
	if _, inDialog := m.Tag(sipmsg.HdrTo); inDialog {
		return nil
	}
	return p.rrValue(nat, prev, next)
}

// relayRequest asks the media relay for its part of a request; it returns
// what the relay did (for the Via mark) and the new body (nil: keep it),
// or sipedge.ErrRefused for a request not to forward (a CANCEL from
// another source than its INVITE).
func (p *Proxy) relayRequest(ctx context.Context, m *sipmsg.Message, src netip.AddrPort, nat bool, family rtpengine.Family) (sipedge.Action, sipmsg.BodyRewriter, error) {
	if p.relay == nil {
		return sipedge.None, nil, nil
	}
	body, act, err := p.relay.Request(ctx, nil, m, src, nat, family) // failures are logged and counted by the relay
	if errors.Is(err, sipedge.ErrRefused) {
		return act, nil, err
	}
	if body == nil {
		return act, nil, nil
	}
	return act, sipedge.Replace(body), nil
}

// firstSource is the source of a request from upstream for the relay's
// records of the call's parties: upstream, or, when the request passed the
// proxy before (a UA's request that comes back to go to another UA of the
// proxy), the UA it first came from, as the proxy wrote it in the Via
// below its own (received=, rport=). The relay then knows the caller as
// the INVITE's source where a dual-stack proxy offers only at the
// callee's side (offerAtCallee), and takes the caller's CANCEL. nat says
// that UA is behind NAT: the source the proxy wrote differs from the
// Via's sent-by (the Via half of fromUA's NAT test), so the relay treats
// the deferred offer as the NATed sender's, as fromUA would have.
func (p *Proxy) firstSource(m *sipmsg.Message) (src netip.AddrPort, nat bool) {
	b := m.Bytes()
	mine := false
	for it := m.Values(sipmsg.HdrVia); it.Next(); {
		v, err := sipmsg.ParseVia(b, it.Span())
		if err != nil {
			break
		}
		if mine {
			src, ok := v.SourceAddr(b)
			if !ok {
				break
			}
			sb, _ := v.SentByAddr(b)
			return src, src != sb
		}
		sb, ok := v.SentByAddr(b)
		mine = ok && p.isSelf(sb)
	}
	return p.upstream, false
}

// offerAtCallee reports whether the relay's part of m, a request from a
// UA going upstream, waits until m comes back to go to the callee (toUA):
// on a dual-stack proxy an INVITE's or UPDATE's offer is written in the
// callee's family (rtpengine's address family), which is known only there.
// An offer made here, in the caller's family, would be final: the relay
// leaves a request it already took part in alone.
func (p *Proxy) offerAtCallee(m *sipmsg.Message) bool {
	return p.alt.conn != nil && (m.IsMethod("INVITE") || m.IsMethod("UPDATE"))
}

// fromUA fixes a request from a UA and forwards it upstream.
func (p *Proxy) fromUA(ctx context.Context, dst []byte, m *sipmsg.Message, src netip.AddrPort) ([]byte, netip.AddrPort, error) {
	fired, err := m.NATTest(src, sipmsg.ContactPrivate|sipmsg.ViaAddrDiffers|sipmsg.ViaPortDiffers, sipmsg.SDPNATCheck)
	if err != nil {
		return dst, netip.AddrPort{}, err
	}
	fix := sipmsg.Fix{Via: true, ForceRport: true, RemoveRoute: p.self, RemoveRouteAlso: p.alt.self, AliasKey: p.dest.AliasKey} // loose routing: drop our own Route(s)
	if fired != 0 {
		fix.Contact = p.contactMode()
		fix.SDP = true
	}
	register := m.IsMethod("REGISTER")
	if register {
		fix.Path = p.edge.AppendPath(nil, p.edge.FlowFor(src), m.HasOptionTag(sipmsg.HdrSupported, sipmsg.OptionOutbound))
	} else {
		fix.RecordRoute = p.recordRoute(m, fired != 0, src.Addr(), p.upstream.Addr())
	}
	var act sipedge.Action
	if !p.offerAtCallee(m) {
		if act, fix.Body, err = p.relayRequest(ctx, m, src, fired != 0, ""); err != nil {
			return dst, netip.AddrPort{}, err // dropped (the relay logged and counted it)
		}
	}
	if register && fired != 0 && p.pings != nil && p.edge.FlowFor(src).Transport == sipmsg.UDP { // a stream UA pings itself (RFC 5626)
		if err := p.pings.Set(keepalive.Contact{Addr: src, Interval: p.ping, Kind: keepalive.PingUDP}); err != nil {
			p.log.Warn("ping", "contact", src, "err", err)
		}
	}
	p.log.Info("request", "method", string(m.Method()), "from", src, "nat", fired.String(), "relay", act)
	fix.AddVia = p.markedVia(m, sipmsg.UDP, act, p.self)
	out, err := sipmsg.AppendFix(dst, m, src, &fix)
	return out, p.upstream, err
}

// toUA forwards a request from upstream to the UA its Request-URI (alias)
// names; a call to a NATed UA is record-routed with the mark and, with a
// relay, its SDP relayed.
func (p *Proxy) toUA(ctx context.Context, dst []byte, m *sipmsg.Message) ([]byte, netip.AddrPort, error) {
	flow, byToken, err := p.edge.RouteFlow(m)
	if err != nil {
		return dst, netip.AddrPort{}, err
	}
	if byToken && !p.edge.Has(flow) {
		return dst, netip.AddrPort{}, fmt.Errorf("%w: %s %s", outbound.ErrFlowGone, flow.Transport, flow.Remote)
	}
	// with a flow token the UA's own flow is the destination, whatever the
	// Request-URI names
	alias, found, err := m.RURIAlias(&p.dest)
	if err != nil && !byToken {
		return dst, netip.AddrPort{}, err
	}
	found = found && err == nil
	var to netip.AddrPort
	switch {
	case byToken:
		to = flow.Remote // the UA's own flow (RFC 5626 §5.3)
	case found:
		to = alias.Addr
	default:
		if to, err = p.dest.CheckURI(m.RequestURI()); err != nil {
			return dst, netip.AddrPort{}, err
		}
	}
	src, callerNAT := p.firstSource(m)
	act, body, err := p.relayRequest(ctx, m, src, callerNAT, p.familyOf(to.Addr()))
	if err != nil {
		return dst, netip.AddrPort{}, err // dropped (the relay logged and counted it)
	}
	fix := sipmsg.Fix{
		RecordRoute:     p.recordRoute(m, sipedge.Marked(m, p.self) || p.alt.conn != nil && sipedge.Marked(m, p.alt.self), p.upstream.Addr(), to.Addr()),
		Body:            body,
		RemoveRoute:     p.self,
		RemoveRouteAlso: p.alt.self,
		RemoveRURIAlias: found,
		AddVia:          p.markedVia(m, p.edge.FlowFor(to).Transport, act, p.selfFor(to.Addr())),
	}
	p.checkFamily(m, to)
	p.log.Info("to UA", "method", string(m.Method()), "to", to, "alias", found, "relay", act, "flow", byToken)
	out, err := sipmsg.AppendFix(dst, m, netip.AddrPort{}, &fix)
	return out, to, err
}

// markedVia is the proxy's Via at self for forwarding m over t, with the
// relay's signed mark when the relay took part (act).
func (p *Proxy) markedVia(m *sipmsg.Message, t sipmsg.Transport, act sipedge.Action, self netip.AddrPort) []byte {
	if p.relay == nil {
		return p.via(m, t, self)
	}
	return p.relay.AppendViaMark(p.via(m, t, self), m, act)
}

// via builds the proxy's Via for transport t (the next hop's: UDP upstream,
// the UA's own flow towards it) with a branch signed under Config.ViaKey
// (sipmsg.Signer.AppendBranch: the same for retransmissions, a CANCEL and
// the ACK of a failure answer, different between requests, RFC 3261
// §16.11), so that response can tell a response to it from a forged one.
func (p *Proxy) via(m *sipmsg.Message, t sipmsg.Transport, self netip.AddrPort) []byte {
	b := append([]byte("SIP/2.0/"), t.String()...)
	b = append(b, ' ')
	b = self.AppendTo(b)
	b = append(b, ";branch="...)
	return p.branches.AppendBranch(b, branchPrefix, m)
}
