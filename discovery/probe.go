package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/jackpal/gateway"
)

// ProbeResult says what the gateway speaks.
type ProbeResult struct {
	Gateway      netip.Addr `json:"gateway"`                 // the router asked
	Local        netip.Addr `json:"local"`                   // the UA's address facing it
	PCP          bool       `json:"pcp"`                     // answered a PCP ANNOUNCE
	NATPMP       bool       `json:"natpmp"`                  // answered a NAT-PMP address request
	UPnP         bool       `json:"upnp"`                    // has a working IGD WAN connection service
	UPnPService  string     `json:"upnp_service,omitempty"`  // e.g. urn:schemas-upnp-org:service:WANIPConnection:1
	UPnPLocation string     `json:"upnp_location,omitempty"` // URL of the device description
	External     netip.Addr `json:"external,omitzero"`       // the WAN address the gateway reported
	ExternalFrom Protocol   `json:"external_from"`           // which protocol reported it
	PCPErr       string     `json:"pcp_error,omitempty"`
	NATPMPErr    string     `json:"natpmp_error,omitempty"`
	UPnPErr      string     `json:"upnp_error,omitempty"`
	At           time.Time  `json:"at"`
}

// Has reports whether the gateway speaks p.
func (r ProbeResult) Has(p Protocol) bool {
	switch p {
	case ProtoPCP:
		return r.PCP
	case ProtoNATPMP:
		return r.NATPMP
	case ProtoUPnP:
		return r.UPnP
	}
	return false
}

// String returns "gateway 192.168.1.1: pcp nat-pmp upnp, external 203.0.113.1".
func (r ProbeResult) String() string {
	var ps []string
	for _, p := range []Protocol{ProtoPCP, ProtoNATPMP, ProtoUPnP} {
		if r.Has(p) {
			ps = append(ps, p.String())
		}
	}
	if len(ps) == 0 {
		ps = append(ps, "no port mapping")
	}
	s := fmt.Sprintf("gateway %s: %s", r.Gateway, strings.Join(ps, " "))
	if r.External.IsValid() {
		s += ", external " + r.External.String()
	}
	return s
}

// gatewayAddrs returns the gateway and the local address facing it.
func (m *Mapper) gatewayAddrs(ctx context.Context) (gw, local netip.Addr, err error) {
	gw = m.cfg.Gateway
	if !gw.IsValid() {
		ip, err := gateway.DiscoverGateway()
		if err != nil {
			return gw, local, fmt.Errorf("%w: %w", ErrNoGateway, err)
		}
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return gw, local, ErrNoGateway
		}
		gw = a.Unmap()
	}
	local = m.cfg.LocalAddr
	if !local.IsValid() {
		// A connected UDP socket sends nothing; its local address is the
		// one routing picks towards the gateway.
		c, err := m.dial(ctx, "udp", netip.AddrPortFrom(gw, m.pmpPort()).String())
		if err != nil {
			return gw, local, fmt.Errorf("local address towards %s: %w", gw, err)
		}
		if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
			local = ua.AddrPort().Addr().Unmap()
		}
		c.Close()
		if !local.IsValid() {
			return gw, local, fmt.Errorf("no local address towards %s: %w", gw, ErrNoGateway)
		}
	}
	return gw, local, nil
}

// probeOutcome is one protocol's probe answer.
type probeOutcome struct {
	proto    Protocol
	err      error
	external netip.Addr
	epoch    uint32
	igd      *igd
}

// Probe asks the gateway, over every configured protocol at once, what it
// speaks, waits for all answers (each bounded by its timeout) and caches
// the result for MapperConfig.ProbeCacheTTL.
func (m *Mapper) Probe(ctx context.Context) (ProbeResult, error) {
	return m.probe(ctx, false)
}

// probe runs the probes concurrently. With fast set it returns as soon as
// the most preferred protocol that can still answer has answered; the
// others finish in the background and fill the cache.
func (m *Mapper) probe(ctx context.Context, fast bool) (ProbeResult, error) {
	gw, local, err := m.gatewayAddrs(ctx)
	if err != nil {
		return ProbeResult{Gateway: gw, Local: local}, err
	}
	res := ProbeResult{Gateway: gw, Local: local, At: m.clock.Now()}
	m.mu.Lock()
	m.probeRes = res
	m.probeOK = true
	m.mu.Unlock()

	protos := m.cfg.protocols()
	out := make(chan probeOutcome, len(protos))
	launch := func(p Protocol) {
		go func() {
			// Probes outlive a fast caller: they end with their own timeout
			// or when the Mapper closes.
			pctx, cancel := m.opContext(context.WithoutCancel(ctx), m.probeTimeout(p))
			defer cancel()
			o := m.probeOne(pctx, p, gw, local)
			m.mergeProbe(o)
			out <- o
		}()
	}
	// A fast probe gives PCP and NAT-PMP (one datagram each) a head start
	// over UPnP (SSDP, then HTTP): a single-threaded gateway such as
	// miniupnpd serving the description would delay the MAP that follows.
	// UPnP starts when the head start ends or the others have failed.
	upnpWaits := false
	for _, p := range protos {
		if fast && p == ProtoUPnP && len(protos) > 1 {
			upnpWaits = true
			continue
		}
		launch(p)
	}
	var headStart <-chan time.Time
	if upnpWaits {
		t := time.NewTimer(upnpHeadStart)
		defer t.Stop()
		headStart = t.C
	}
	startUPnP := func() {
		if upnpWaits {
			upnpWaits, headStart = false, nil
			launch(ProtoUPnP)
		}
	}
	done := map[Protocol]probeOutcome{}
	for len(done) < len(protos) {
		select {
		case o := <-out:
			done[o.proto] = o
		case <-headStart:
			startUPnP()
			continue
		case <-ctx.Done():
			return m.cachedProbe(), fmt.Errorf("probe %s: %w", gw, ctx.Err())
		}
		if fast && m.decided(protos, done) {
			break
		}
		if upnpWaits && len(done) == len(protos)-1 {
			startUPnP() // everything else failed
		}
	}
	if upnpWaits {
		m.mu.Lock()
		m.probeRes.UPnPErr = "not probed: a preferred protocol answered first"
		m.mu.Unlock()
	}
	r := m.cachedProbe()
	if !r.PCP && !r.NATPMP && !r.UPnP && len(done) == len(protos) {
		return r, fmt.Errorf("probe %s: %w", gw, ErrNoPortMapper)
	}
	return r, nil
}

// upnpHeadStart is how long a fast probe waits for PCP and NAT-PMP before
// it starts the UPnP probe.
const upnpHeadStart = 100 * time.Millisecond

// decided reports whether, walking protos in preference order, a working
// protocol is found before one that has not answered yet.
func (m *Mapper) decided(protos []Protocol, done map[Protocol]probeOutcome) bool {
	for _, p := range protos {
		o, ok := done[p]
		if !ok {
			return false
		}
		if o.err == nil {
			return true
		}
	}
	return true
}

func (m *Mapper) probeTimeout(p Protocol) time.Duration {
	if p == ProtoUPnP {
		return 3 * m.cfg.upnpTimeout()
	}
	return m.cfg.pmpTimeout()
}

func (m *Mapper) probeOne(ctx context.Context, p Protocol, gw, local netip.Addr) probeOutcome {
	o := probeOutcome{proto: p}
	switch p {
	case ProtoPCP:
		r, err := m.pcpAnnounce(ctx, gw, local)
		o.err, o.epoch = err, r.Epoch
	case ProtoNATPMP:
		r, err := m.pmpExternal(ctx, gw)
		o.err, o.epoch, o.external = err, r.Epoch, r.External
	case ProtoUPnP:
		locs, err := m.ssdpSearch(ctx, gw)
		if err != nil {
			o.err = err
			break
		}
		for _, loc := range locs {
			g, ext, err := m.fetchIGD(ctx, loc, gw)
			if err == nil {
				o.igd, o.external, o.err = g, ext, nil
				break
			}
			o.err = err
		}
	default:
		o.err = fmt.Errorf("protocol %s: %w", p, ErrNoPortMapper)
	}
	if o.err != nil {
		m.log.Debug("discovery: probe failed", "protocol", p, "gateway", gw, "err", o.err)
	} else {
		m.log.Debug("discovery: probe answered", "protocol", p, "gateway", gw, "external", o.external)
	}
	return o
}

// mergeProbe records one protocol's answer in the cache.
func (m *Mapper) mergeProbe(o probeOutcome) {
	var reset bool
	m.mu.Lock()
	r := &m.probeRes
	errText := ""
	if o.err != nil {
		errText = o.err.Error()
	}
	switch o.proto {
	case ProtoPCP:
		r.PCP, r.PCPErr = o.err == nil, errText
	case ProtoNATPMP:
		r.NATPMP, r.NATPMPErr = o.err == nil, errText
	case ProtoUPnP:
		r.UPnP, r.UPnPErr = o.err == nil, errText
		if o.igd != nil {
			m.igd = o.igd
			r.UPnPService, r.UPnPLocation = o.igd.service, o.igd.location
		}
	}
	if o.err == nil && o.external.IsValid() && (!r.External.IsValid() || o.proto < r.ExternalFrom || r.ExternalFrom == ProtoNone) {
		r.External, r.ExternalFrom = o.external, o.proto
	}
	if o.err == nil && (o.proto == ProtoPCP || o.proto == ProtoNATPMP) {
		reset = m.noteEpochLocked(o.proto, o.epoch)
	}
	m.mu.Unlock()
	if reset {
		m.restartDetected(o.proto)
	}
}

func (m *Mapper) cachedProbe() ProbeResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.probeRes
}

// ensureProbe returns the cached probe while it is fresh and found
// something, and probes (fast) otherwise.
func (m *Mapper) ensureProbe(ctx context.Context) (ProbeResult, error) {
	m.mu.Lock()
	r, ok := m.probeRes, m.probeOK
	m.mu.Unlock()
	if ok && (r.PCP || r.NATPMP || r.UPnP) && m.clock.Now().Sub(r.At) < m.cfg.probeTTL() {
		return r, nil
	}
	return m.probe(ctx, true)
}

// noteEpochLocked records a PCP/NAT-PMP epoch and reports whether it shows
// a gateway restart (RFC 6887 8.5, RFC 6886 3.6).
func (m *Mapper) noteEpochLocked(p Protocol, epoch uint32) bool {
	st := &m.epochs[p]
	now := m.clock.Now()
	reset := st.ok && !epochValid(st.epoch, epoch, int64(now.Sub(st.at)/time.Second))
	st.epoch, st.at, st.ok = epoch, now, true
	return reset
}

type epochState struct {
	epoch uint32
	at    time.Time
	ok    bool
}
