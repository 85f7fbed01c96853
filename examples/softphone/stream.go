package main

import (
	"context"
	"crypto/x509"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/outbound"
	"github.com/sipnat/sipnat/sipmsg"
)

// StreamConfig makes the phone's SIP run over TCP or TLS to the registrar
// as an RFC 5626 flow (outbound.Flow): its own connection, CRLF keep-alives
// at the registrar's Flow-Timer, a new flow when one fails. Media stays on
// the UDP RTP socket the agent looks after.
type StreamConfig struct {
	Transport  sipmsg.Transport // sipmsg.TCP or sipmsg.TLS
	Server     netip.AddrPort   // the registrar's TCP or TLS address
	ServerName string           // TLS: the name the registrar's certificate must carry
	RootCAs    *x509.CertPool   // TLS: the roots to check it against; nil: the system's
	Instance   string           // +sip.instance, a urn:uuid; "" makes one per run
	// Recovery shortens the RFC's 30/90/1800 s backoff (tests); zero
	// keeps it.
	Recovery keepalive.Recovery
	// LifetimeMax, when not zero, measures how long the NATs keep an idle
	// connection (outbound.MeasureStreamLifetime, up to this long) before
	// registering, and keeps the flow at half of it when the registrar
	// sends no shorter Flow-Timer; zero keeps the RFC's 96-120 s.
	LifetimeMax time.Duration

	flow outbound.FlowConfig // what newFlow built, for the measurement
}

// newFlow builds the phone's outbound flow.
func (p *Phone) newFlow(sc *StreamConfig) (*outbound.Flow, error) {
	if sc.Instance == "" {
		u := []byte(randHex(16))
		sc.Instance = "urn:uuid:" + string(u[:8]) + "-" + string(u[8:12]) + "-4" + string(u[13:16]) + "-8" + string(u[17:20]) + "-" + string(u[20:32])
	}
	dial := p.dial()
	sc.flow = outbound.FlowConfig{
		Transport: sc.Transport, Server: sc.Server, ServerName: sc.ServerName, RootCAs: sc.RootCAs, Dial: dial,
		Register: func(ctx context.Context, f *outbound.Flow) ([]byte, error) {
			return p.registerAnswer(ctx, p.cfg.Expires)
		},
		OnMessage: p.flowMessage,
		OnEvent:   p.flowEvent,
		Recovery:  sc.Recovery, Logger: p.cfg.Logger,
	}
	return outbound.NewFlow(sc.flow)
}

// flowEvent prints what happened to the flow; when a flow replacing one
// that failed registers, the call in progress gets the new Contact
// (refreshTarget).
func (p *Phone) flowEvent(e outbound.Event) {
	p.printf("flow: %s", e)
	if e.Kind == outbound.Registered && e.Reformed {
		p.requestRefresh("the new flow's Contact")
	}
}

// measureStream bounds the NATs' idle-connection timeout and sets the
// flow's keep-alive interval from it.
func (p *Phone) measureStream(ctx context.Context, sc *StreamConfig) {
	p.printf("measuring how long the NAT keeps an idle %s connection (up to %v)", sc.Transport, sc.LifetimeMax)
	r, err := outbound.MeasureStreamLifetime(ctx, sc.flow, sc.LifetimeMax, 4)
	if err != nil {
		p.printf("stream lifetime: %v (keep-alives at the default interval)", err)
		return
	}
	p.flow.SetTiming(keepalive.Timing{Lifetime: r.Lower})
	p.mu.Lock()
	p.stats.StreamLifetime = r
	p.mu.Unlock()
	p.printf("the NAT keeps an idle connection at least %v (upper bound %v): keep-alives every %v unless the registrar asks for less",
		r.Lower, r.Upper, p.flow.KeepaliveInterval())
}

// flowMessage dispatches a request the registrar sent over the flow (a call,
// a BYE, an OPTIONS); answers to our requests went to Transact.
func (p *Phone) flowMessage(f *outbound.Flow, b []byte) {
	var m sipmsg.Message
	if err := m.Parse(b); err != nil {
		p.log.Debug("unparsable SIP on the flow", "err", err)
		return
	}
	if m.IsRequest() {
		p.handleRequest(&m, f.Server())
	}
}

// sendSIP sends a message to to: over the flow when SIP runs on a stream
// (the registrar sent the request there), from the SIP socket otherwise.
func (p *Phone) sendSIP(b []byte, to netip.AddrPort) error {
	if p.flow != nil {
		return p.flow.Send(b)
	}
	_, err := p.sl().sip.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

// transport is the SIP transport of Via and Contact.
func (p *Phone) transport() sipmsg.Transport {
	if p.flow != nil {
		return p.flow.Transport()
	}
	return sipmsg.UDP
}

// runFlow keeps the flow (it registers through registerAnswer on every new
// connection) and refreshes the registration until ctx ends.
func (p *Phone) runFlow(ctx context.Context) error {
	if sc := p.cfg.Stream; sc.LifetimeMax > 0 {
		p.measureStream(ctx, sc)
	}
	done := make(chan error, 1)
	go func() { done <- p.flow.Run(ctx) }()
	defer func() { <-done }()
	return p.keepRegistered(ctx, p.flow.Up)
}
