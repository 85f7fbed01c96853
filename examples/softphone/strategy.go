package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/nat"
)

// Mechanisms says which NAT traversal mechanisms the phone may use.
type Mechanisms struct {
	STUN    bool // STUN-derived Contact and SDP addresses
	Mapping bool // UPnP IGD, NAT-PMP or PCP port mappings on the gateway
	Rport   bool // learn the public address from the registrar's received/rport
}

// Strategy is what the phone decided before registering, and why.
type Strategy struct {
	NAT        *nat.Result        `json:"nat,omitempty"`
	Gateway    *discovery.Choice  `json:"gateway_choice,omitempty"`
	SIPMapping *discovery.Mapping `json:"sip_mapping,omitempty"`
	RTPMapping *discovery.Mapping `json:"rtp_mapping,omitempty"`

	Contact     netip.AddrPort `json:"contact"`      // Contact and Via sent-by of the first REGISTER
	ContactFrom string         `json:"contact_from"` // local, port mapping, STUN or rport
	Media       netip.AddrPort `json:"media"`        // SDP c= and m= port
	MediaFrom   string         `json:"media_from"`
	KeepAlive   time.Duration  `json:"keepalive"` // 0: no keep-alive needed
	Learn       bool           `json:"learn_rport"`

	// Predictions, said before any call.
	IncomingCalls bool     `json:"incoming_calls"` // the registrar can reach the phone
	TwoWayAudio   bool     `json:"two_way_audio"`  // media from a peer reaches the phone
	Notes         []string `json:"notes"`
}

// Name is a short label of the strategy for tables.
func (s *Strategy) Name() string {
	if s.ContactFrom == s.MediaFrom {
		return s.ContactFrom
	}
	return "sip:" + s.ContactFrom + " media:" + s.MediaFrom
}

func (s *Strategy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Contact %s (from %s); media %s (from %s)", s.Contact, s.ContactFrom, s.Media, s.MediaFrom)
	if s.KeepAlive > 0 {
		fmt.Fprintf(&b, "; keep-alive every %v", s.KeepAlive)
	}
	fmt.Fprintf(&b, "\n  incoming calls: %s; two-way audio: %s", yesNo(s.IncomingCalls), yesNo(s.TwoWayAudio))
	for _, n := range s.Notes {
		b.WriteString("\n  - " + n)
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "expected to work"
	}
	return "NOT expected to work"
}

func (s *Strategy) note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

// decide runs NAT discovery on the SIP socket, asks the gateway for port
// mappings where allowed, and chooses the Contact and media addresses.
func (p *Phone) decide(ctx context.Context) (*Strategy, error) {
	s := &Strategy{Contact: p.sipLocal, ContactFrom: "local", Media: p.rtpLocal, MediaFrom: "local",
		IncomingCalls: true, TwoWayAudio: true}
	cfg := p.cfg

	var res *nat.Result
	if len(cfg.STUN) > 0 {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second+cfg.LifetimeMax)
		var err error
		res, err = nat.DiscoverWith(dctx, p.sip, nat.DiscoverConfig{
			Servers: cfg.STUN, Client: p.sipSTUN, LifetimeMax: cfg.LifetimeMax,
			ListenPacket: p.extraSocket, Logger: cfg.Logger,
		})
		cancel()
		if err != nil {
			s.note("NAT discovery failed (%v): UDP to the STUN server seems blocked; SIP over UDP will not work either", err)
			s.IncomingCalls, s.TwoWayAudio = false, false
			return s, nil
		}
		s.NAT = res
		s.note("NAT: %s", strings.ReplaceAll(res.String(), "\n", "; "))
	}
	behind := res == nil || res.Mapping != nat.None
	if !behind {
		s.note("no NAT: the local addresses are public")
		return s, nil
	}

	// Port mappings from the gateway (UPnP IGD, NAT-PMP, PCP).
	if cfg.Allow.Mapping {
		p.mapGateway(ctx, s, res)
	}

	if s.SIPMapping == nil && res != nil && cfg.Allow.STUN {
		s.Contact, s.ContactFrom = res.Public, "STUN"
		if res.Mapping != nat.EndpointIndependent {
			s.note("the mapping depends on the destination: a STUN-derived Contact is only a first guess")
		}
	}
	if s.SIPMapping == nil && cfg.Allow.Rport {
		s.Learn = true
		if s.ContactFrom == "local" {
			s.ContactFrom = "rport"
		}
	}
	if s.SIPMapping == nil && !cfg.Allow.Rport && !(cfg.Allow.STUN && res != nil && res.SIP.STUNContact) {
		s.IncomingCalls = false
		s.note("no mechanism gives a reachable Contact: incoming calls will fail")
	}
	// A registrar with nathelper sends to the source of the REGISTER flow
	// (its received address), mapping or not: keep that flow open.
	s.KeepAlive = 25 * time.Second
	if res != nil && res.SIP.KeepAlive > 0 {
		s.KeepAlive = res.SIP.KeepAlive
	}

	// Media.
	if s.RTPMapping != nil {
		s.Media, s.MediaFrom = s.RTPMapping.External, "port mapping"
		return s, nil
	}
	if res == nil || !cfg.Allow.STUN {
		s.TwoWayAudio = false
		s.note("the SDP would carry the private address %s: the caller's audio would not reach this phone", p.rtpLocal.Addr())
		return s, nil
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	mapped, err := p.rtpSTUN.Binding(bctx, res.Server)
	cancel()
	if err != nil {
		s.TwoWayAudio = false
		s.note("STUN on the RTP socket failed: %v", err)
		return s, nil
	}
	s.Media, s.MediaFrom = mapped, "STUN"
	if res.SIP.MediaRelay {
		s.TwoWayAudio = false
		s.note("the NAT gives a new public port for every destination (%s mapping): the caller's audio cannot reach the port the SDP names; a media relay (TURN, rtpproxy) or a port mapping is needed", res.Mapping)
	} else {
		s.note("symmetric RTP (RFC 4961): the phone sends from the port it receives on, which opens the NAT's filter for the caller")
	}
	return s, nil
}

// mapGateway asks the gateway for mappings of the SIP and RTP ports, and
// uses them when they make the phone reachable from the internet.
func (p *Phone) mapGateway(ctx context.Context, s *Strategy, res *nat.Result) {
	cfg := p.cfg
	p.mapper = discovery.NewMapper(discovery.Config{
		Gateway: cfg.Gateway, LocalAddr: p.sipLocal.Addr(), Lifetime: time.Hour, Description: "sipnat softphone",
		DialContext: cfg.DialContext, ListenPacket: cfg.ListenPacket, Logger: cfg.Logger,
		PMPTimeout: 2 * time.Second, UPnPTimeout: 2 * time.Second,
	})
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	probe, err := p.mapper.Probe(mctx)
	if err != nil || !(probe.PCP || probe.NATPMP || probe.UPnP) {
		s.note("the gateway offers no port mapping (UPnP, NAT-PMP, PCP)")
		return
	}
	sipMap, err := p.mapper.Map(mctx, "udp", p.sipLocal.Port())
	if err != nil {
		s.note("the gateway refused a mapping of the SIP port: %v", err)
		return
	}
	obs := discovery.Observations{Local: p.sipLocal, Mapping: &sipMap, Gateway: probe.External, GatewayFrom: probe.ExternalFrom}
	if res != nil {
		obs.STUN = res.Public
		res.CompareGateway(probe.External)
	}
	choice := discovery.Reconcile(obs)
	s.Gateway = &choice
	if choice.Source != discovery.SourceMapping {
		s.note("the gateway mapped the SIP port (%s) but it does not help: %s", sipMap.External, choice.Reason)
		_ = p.mapper.Unmap(mctx, "udp", p.sipLocal.Port())
		return
	}
	s.SIPMapping = &sipMap
	s.Contact, s.ContactFrom = sipMap.External, "port mapping"
	s.note("%s mapped the SIP port: %s", sipMap.Protocol, choice.Reason)
	rtpMap, err := p.mapper.Map(mctx, "udp", p.rtpLocal.Port())
	if err != nil {
		s.note("the gateway refused a mapping of the RTP port: %v", err)
		return
	}
	s.RTPMapping = &rtpMap
}
