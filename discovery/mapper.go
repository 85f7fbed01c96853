package discovery

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/sipnat/sipnat/clock"
)

// Mapper asks the gateway for port mappings over PCP, NAT-PMP or UPnP IGD,
// whichever it speaks, keeps them renewed and removes them on Close. All
// methods are safe for concurrent use.
type Mapper struct {
	cfg   MapperConfig
	clock clock.Clock
	log   *slog.Logger
	hc    *http.Client

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	op sync.Mutex // serialises operations on the gateway; taken before mu

	mu       sync.Mutex
	probeRes ProbeResult
	probeOK  bool
	igd      *igd
	epochs   [4]epochState
	maps     map[mapKey]*entry
}

type mapKey struct {
	network string
	port    uint16
}

type entry struct {
	m     Mapping
	timer clock.Timer
}

// NewMapper returns a Mapper. It sends nothing until the first call; with
// MapperConfig.AnnounceAddr set it starts listening for announcements.
func NewMapper(cfg MapperConfig) *Mapper {
	m := &Mapper{
		cfg:    cfg,
		clock:  clock.OrSystem(cfg.Clock),
		log:    cfg.Logger,
		closed: make(chan struct{}),
		maps:   map[mapKey]*entry{},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.hc = newHTTPClient(cfg.HTTPClient, cfg.DialContext, cfg.upnpTimeout())
	if cfg.AnnounceAddr != "" {
		m.listenAnnounce()
	}
	return m
}

// opContext derives a context for one gateway operation: bounded by d and
// cancelled when the Mapper closes.
func (m *Mapper) opContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, d)
	stop := make(chan struct{})
	go func() {
		select {
		case <-m.closed:
			cancel()
		case <-stop:
		}
	}()
	return ctx, func() { close(stop); cancel() }
}

func (m *Mapper) isClosed() bool {
	select {
	case <-m.closed:
		return true
	default:
		return false
	}
}

func (m *Mapper) emit(evs []Event) {
	for _, e := range evs {
		m.log.Info("discovery: "+e.Kind.String(), "mapping", e.Mapping.String(), "reason", e.Reason, "err", e.Err)
		if m.cfg.OnEvent != nil {
			m.cfg.OnEvent(e)
		}
	}
}

func normNetwork(network string) (string, error) {
	switch network {
	case "udp", "udp4", "":
		return "udp", nil
	case "tcp", "tcp4":
		return "tcp", nil
	}
	return "", fmt.Errorf("network %q, want udp or tcp: %w", network, ErrUnsupported)
}

// Map asks the gateway to forward the external side of internalPort
// (network "udp" or "tcp") to this host and keeps it renewed until Unmap or
// Close. Mapping a port that is already mapped returns the existing
// mapping. It tries the protocols the gateway speaks in the configured
// order of preference and returns the first that works.
func (m *Mapper) Map(ctx context.Context, network string, internalPort uint16) (Mapping, error) {
	network, err := normNetwork(network)
	if err != nil {
		return Mapping{}, err
	}
	mp, created, err := m.mapLocked(ctx, network, internalPort)
	if created {
		m.emit([]Event{{Kind: EventMapped, Mapping: mp, Reason: "the gateway forwards " + mp.External.String() + " to " + mp.Internal.String()}})
	}
	return mp, err
}

func (m *Mapper) mapLocked(ctx context.Context, network string, internalPort uint16) (Mapping, bool, error) {
	m.op.Lock()
	defer m.op.Unlock()
	if m.isClosed() {
		return Mapping{}, false, ErrClosed
	}
	key := mapKey{network, internalPort}
	m.mu.Lock()
	if e, ok := m.maps[key]; ok {
		mp := e.m
		m.mu.Unlock()
		return mp, false, nil
	}
	m.mu.Unlock()
	mp, err := m.mapAny(ctx, network, internalPort)
	if err != nil {
		return Mapping{}, false, fmt.Errorf("map %s %d: %w", network, internalPort, err)
	}
	m.mu.Lock()
	m.store(key, mp)
	mp = m.maps[key].m
	m.mu.Unlock()
	return mp, true, nil
}

// mapAny creates a mapping over the first protocol that works. When every
// protocol the (fast) probe found refuses, it probes all of them fully and
// tries the ones not tried yet: a gateway may answer PCP ANNOUNCE yet
// refuse MAP, and speak UPnP.
func (m *Mapper) mapAny(ctx context.Context, network string, port uint16) (Mapping, error) {
	pr, err := m.ensureProbe(ctx)
	if err != nil && !pr.PCP && !pr.NATPMP && !pr.UPnP {
		return Mapping{}, err
	}
	var errs []error
	tried := map[Protocol]bool{}
	try := func(pr ProbeResult) (Mapping, bool) {
		for _, p := range m.cfg.protocols() {
			if !pr.Has(p) || tried[p] {
				continue
			}
			tried[p] = true
			var nonce [12]byte
			rand.Read(nonce[:])
			seed := Mapping{Protocol: p, Network: network, Gateway: pr.Gateway, Internal: netip.AddrPortFrom(pr.Local, port),
				nonce: nonce, wantPort: port, desc: m.cfg.description()}
			mp, _, err := m.create(ctx, seed)
			if err == nil {
				return mp, true
			}
			m.log.Debug("discovery: mapping failed", "protocol", p, "err", err)
			errs = append(errs, err)
		}
		return Mapping{}, false
	}
	if mp, ok := try(pr); ok {
		return mp, nil
	}
	if len(tried) < len(m.cfg.protocols()) && ctx.Err() == nil {
		if full, err := m.probe(ctx, false); err == nil {
			if mp, ok := try(full); ok {
				return mp, nil
			}
		}
	}
	m.invalidateProbe()
	if len(errs) == 0 {
		return Mapping{}, ErrNoPortMapper
	}
	return Mapping{}, errors.Join(errs...)
}

func (m *Mapper) invalidateProbe() {
	m.mu.Lock()
	m.probeOK = false
	m.mu.Unlock()
}

// create asks for (or renews) the mapping described by seed: same protocol,
// internal port, nonce, and the external port asked for. It reports
// whether the answer showed a gateway restart.
func (m *Mapper) create(ctx context.Context, seed Mapping) (Mapping, bool, error) {
	ctx, cancel := m.opContext(ctx, m.opTimeout(seed.Protocol))
	defer cancel()
	mp := seed
	tcp := seed.Network == "tcp"
	gw, local, port := seed.Gateway, seed.Internal.Addr(), seed.Internal.Port()
	want := seed.wantPort
	if seed.External.IsValid() {
		want = seed.External.Port()
	}
	life := uint32(m.cfg.lifetime() / time.Second)
	var reset bool
	switch seed.Protocol {
	case ProtoPCP:
		var sugg netip.Addr
		if seed.External.IsValid() {
			sugg = seed.External.Addr()
		}
		r, err := m.pcpMap(ctx, gw, local, seed.nonce, tcp, port, want, sugg, life)
		if err != nil {
			return seed, false, err
		}
		if r.Lifetime == 0 {
			return seed, false, fmt.Errorf("PCP map port %d: success with lifetime 0: %w", port, ErrMalformed)
		}
		mp.External = netip.AddrPortFrom(r.External, r.ExternalPort)
		mp.Lifetime = time.Duration(r.Lifetime) * time.Second
		mp.Epoch = r.Epoch
		m.mu.Lock()
		reset = m.noteEpochLocked(ProtoPCP, r.Epoch)
		m.mu.Unlock()
	case ProtoNATPMP:
		r, err := m.pmpMap(ctx, gw, tcp, port, want, life)
		if err != nil {
			return seed, false, err
		}
		if r.Lifetime == 0 || r.ExternalPort == 0 {
			return seed, false, fmt.Errorf("NAT-PMP map port %d: success without lifetime or port: %w", port, ErrMalformed)
		}
		a, err := m.pmpExternal(ctx, gw)
		if err != nil {
			return seed, false, err
		}
		mp.External = netip.AddrPortFrom(a.External, r.ExternalPort)
		mp.Lifetime = time.Duration(r.Lifetime) * time.Second
		mp.Epoch = r.Epoch
		m.mu.Lock()
		reset = m.noteEpochLocked(ProtoNATPMP, r.Epoch)
		m.noteEpochLocked(ProtoNATPMP, a.Epoch)
		m.mu.Unlock()
	case ProtoUPnP:
		m.mu.Lock()
		g := m.igd
		m.mu.Unlock()
		if g == nil {
			return seed, false, fmt.Errorf("UPnP: no IGD found: %w", ErrNoPortMapper)
		}
		if isPinhole(local) {
			id, lease, err := m.upnpPinhole(ctx, g, tcp, local, port, seed.pinhole, life)
			if err != nil {
				return seed, false, err
			}
			mp.pinhole, mp.External = id, seed.Internal
			mp.Lifetime = time.Duration(lease) * time.Second
			mp.Service = svcWANIPv6FC
			break
		}
		ext, lease, err := m.upnpAdd(ctx, g, tcp, local, port, want, life, seed.desc)
		if err != nil {
			return seed, false, fmt.Errorf("UPnP map port %d: %w", port, err)
		}
		s, err := g.conn.GetExternalIPAddressCtx(ctx)
		if err != nil {
			return seed, false, fmt.Errorf("UPnP GetExternalIPAddress: %w", upnpError(err))
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return seed, false, fmt.Errorf("UPnP external address %q: %w", s, ErrMalformed)
		}
		mp.External = netip.AddrPortFrom(a.Unmap(), ext)
		mp.Lifetime = time.Duration(lease) * time.Second
		mp.Service = g.service
	default:
		return seed, false, fmt.Errorf("protocol %s: %w", seed.Protocol, ErrNoPortMapper)
	}
	now := m.clock.Now()
	mp.Obtained = now
	mp.Expires = time.Time{}
	if mp.Lifetime > 0 {
		mp.Expires = now.Add(mp.Lifetime)
	}
	mp.Replaced = mp.External.Port() != seed.wantPort
	return mp, reset, nil
}

func (m *Mapper) opTimeout(p Protocol) time.Duration {
	if p == ProtoUPnP {
		return 4 * m.cfg.upnpTimeout()
	}
	return 2 * m.cfg.pmpTimeout()
}

// Mappings returns the current mappings, sorted by network and port.
func (m *Mapper) Mappings() []Mapping {
	m.mu.Lock()
	out := make([]Mapping, 0, len(m.maps))
	for _, e := range m.maps {
		out = append(out, e.m)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].Internal.Port() < out[j].Internal.Port()
	})
	return out
}

// ExternalAddr returns the WAN address the gateway reports and the
// protocol that reported it, probing if nothing is cached.
func (m *Mapper) ExternalAddr(ctx context.Context) (netip.Addr, Protocol, error) {
	r, err := m.ensureProbe(ctx)
	if !r.External.IsValid() {
		r = m.cachedProbe()
	}
	if !r.External.IsValid() {
		// A PCP ANNOUNCE carries no address: wait for every protocol.
		r, err = m.probe(ctx, false)
	}
	if !r.External.IsValid() {
		if err == nil {
			err = ErrNoPortMapper
		}
		return netip.Addr{}, ProtoNone, fmt.Errorf("external address: %w", err)
	}
	return r.External, r.ExternalFrom, nil
}

// Unmap removes the mapping of internalPort from the gateway and stops
// renewing it.
func (m *Mapper) Unmap(ctx context.Context, network string, internalPort uint16) error {
	network, err := normNetwork(network)
	if err != nil {
		return err
	}
	key := mapKey{network, internalPort}
	m.op.Lock()
	m.mu.Lock()
	e, ok := m.maps[key]
	if ok {
		delete(m.maps, key)
		if e.timer != nil {
			e.timer.Stop()
		}
	}
	m.mu.Unlock()
	if !ok {
		m.op.Unlock()
		return nil
	}
	err = m.release(ctx, e.m)
	m.op.Unlock()
	m.emit([]Event{{Kind: EventDeleted, Mapping: e.m, Err: err}})
	return err
}

// release deletes mp on the gateway.
func (m *Mapper) release(ctx context.Context, mp Mapping) error {
	ctx, cancel := context.WithTimeout(ctx, m.opTimeout(mp.Protocol))
	defer cancel()
	tcp := mp.Network == "tcp"
	var err error
	switch mp.Protocol {
	case ProtoPCP:
		// The mapping's external address and port go along: miniupnpd
		// refuses an IPv6 firewall delete (NOT_AUTHORIZED) without them.
		_, err = m.pcpMap(ctx, mp.Gateway, mp.Internal.Addr(), mp.nonce, tcp, mp.Internal.Port(), mp.External.Port(), mp.External.Addr(), 0)
	case ProtoNATPMP:
		_, err = m.pmpMap(ctx, mp.Gateway, tcp, mp.Internal.Port(), 0, 0)
	case ProtoUPnP:
		m.mu.Lock()
		g := m.igd
		m.mu.Unlock()
		if g == nil {
			return fmt.Errorf("unmap %s: %w", mp, ErrNoPortMapper)
		}
		if mp.pinhole != 0 {
			err = m.upnpDeletePinhole(ctx, g, mp.pinhole)
			break
		}
		err = m.upnpDelete(ctx, g, tcp, mp.External.Port())
	}
	if err != nil {
		return fmt.Errorf("unmap %s: %w", mp, err)
	}
	return nil
}

// Close stops renewals, deletes every mapping on the gateway (each bounded
// by its protocol's timeout), closes the idle HTTP connections of its
// client, and returns the errors of those deletions. Calling it again
// returns nil.
func (m *Mapper) Close() error {
	var err error
	var evs []Event
	m.closeOnce.Do(func() {
		close(m.closed) // cancels a renewal in flight
		m.op.Lock()
		defer m.op.Unlock()
		m.mu.Lock()
		var all []Mapping
		for k, e := range m.maps {
			if e.timer != nil {
				e.timer.Stop()
			}
			all = append(all, e.m)
			delete(m.maps, k)
		}
		m.mu.Unlock()
		var errs []error
		for _, mp := range all {
			e := m.release(context.Background(), mp)
			errs = append(errs, e)
			evs = append(evs, Event{Kind: EventDeleted, Mapping: mp, Err: e})
		}
		err = errors.Join(errs...)
		// an idle keep-alive connection to the gateway's HTTP server would
		// hold a socket (and the transport's goroutines) after Close
		m.hc.CloseIdleConnections()
	})
	m.emit(evs)
	m.wg.Wait()
	return err
}
