package nat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/internal/rtt"
	"github.com/sipnat/sipnat/ipaddr"
)

// DiscoverConfig configures DiscoverWith. Only Servers is required.
type DiscoverConfig struct {
	// Servers are STUN servers, preferred first; all are asked at once.
	// The first in this order that answers (the slower ones get
	// ProbeTimeout after the fastest answer) is used for the behaviour
	// tests; another one that answers is used for the two-server check when
	// that one has no alternate address.
	Servers []netip.AddrPort
	// RTO is the initial retransmission timeout of the first request to
	// each server; zero means DefaultRTO. Later probes adapt it to the
	// measured round-trip time.
	RTO time.Duration
	// ProbeTimeout bounds each probe whose answer the NAT may legitimately
	// filter (filtering, hairpin, lifetime). Such a probe is sent every RTO
	// derived from the round-trip times of the first bindings (RFC 6298's
	// estimator, at least 10 ms), and its silence means "filtered" once it
	// has been sent 12 times, 0.2 s (at most half of ProbeTimeout) have
	// passed, and three control Bindings have completed after that, so a
	// classification takes about 0.2 s or a few dozen RTTs; silence for
	// ProbeTimeout means "filtered" in any case. Zero means 1 s.
	ProbeTimeout time.Duration
	// LifetimeMax, when not zero, measures the binding lifetime (RFC 5780
	// section 4.6) with idle times up to LifetimeMax. It makes Discover take
	// about as long as the lifetime (or LifetimeMax) plus ProbeTimeout, and
	// is bounded by ctx.
	LifetimeMax time.Duration
	// ListenPacket opens the extra UDP sockets the filtering and lifetime
	// probes use, with the shape of net.ListenConfig.ListenPacket (as
	// discovery.MapperConfig.ListenPacket): it is called with network "udp4" or
	// "udp6" and the tested socket's IP with port 0. Nil means a
	// net.ListenConfig; give it when sockets must be made specially
	// (another network namespace).
	ListenPacket func(ctx context.Context, network, address string) (net.PacketConn, error)
	// LocalAddrs are the host's own addresses, used to see "no NAT" when
	// the socket is bound to an unspecified address; nil means the
	// interface addresses.
	LocalAddrs []netip.Addr
	// GatewayExternal is the gateway's external address from UPnP, NAT-PMP
	// or PCP (the discovery package); when set, Result.CompareGateway is
	// applied to it.
	GatewayExternal netip.Addr
	// NAT64 is the NAT64 prefix of an IPv6-only network (discovery.DetectNAT64).
	// When set, IPv4 addresses the probes must send to (a server's
	// alternate address, the public mapping for the hairpin test) are
	// synthesised into it (RFC 6052); give the servers as synthesised
	// addresses too. Result.NAT64 repeats it.
	NAT64 netip.Prefix
	// Clock and Logger as in ClientConfig.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Discover classifies the NAT between conn and the internet with the given
// STUN servers. It is DiscoverWith with default settings (no lifetime
// measurement); see there.
func Discover(ctx context.Context, conn net.PacketConn, servers ...netip.AddrPort) (*Result, error) {
	return DiscoverWith(ctx, conn, DiscoverConfig{Servers: servers})
}

// DiscoverWith runs NAT behaviour discovery (RFC 5780, with RFC 3489 and
// two-server fallbacks chosen from what the servers answer) over conn, the
// socket whose binding matters (the SIP socket). Independent probes run
// concurrently: the mapping tests on conn, the filtering tests on an extra
// socket (so that the mapping tests cannot open its filter), the hairpin test
// on conn, and the lifetime probes each on its own socket.
//
// DiscoverWith reads conn itself until it returns, and first proves with
// Client.CheckDelivery that it is the only reader: on a socket another
// goroutine reads (a SIP stack's loop), it returns an error matching
// ErrSharedSocket within about a second instead of losing the answers and
// calling UDP blocked. When the caller's loop reads the socket, run the
// discovery through the Client that loop feeds instead (Client.Discover). If
// no server answers, it returns a Result with Mapping Blocked and an error
// matching ErrNoResponse (and ctx.Err() when ctx ended first). If ctx ends
// before the classification is complete, it returns what it has and ctx's
// error; if it ends during the lifetime search, the lifetime found so far is
// a lower bound and there is no error.
func DiscoverWith(ctx context.Context, conn net.PacketConn, cfg DiscoverConfig) (*Result, error) {
	return discover(ctx, nil, conn, cfg)
}

// Discover runs DiscoverWith on the socket of c, a client whose socket the
// caller's read loop reads (ClientConfig.CallerReads) and feeds to
// c.HandlePacket: the probes on that socket go through c, so that the loop
// keeps the socket and the answers still arrive.
func (c *Client) Discover(ctx context.Context, cfg DiscoverConfig) (*Result, error) {
	return discover(ctx, c, c.conn, cfg)
}

// discover is DiscoverWith, through client when it is not nil.
func discover(ctx context.Context, client *Client, conn net.PacketConn, cfg DiscoverConfig) (*Result, error) {
	if len(cfg.Servers) == 0 {
		return nil, ErrNoServer
	}
	d := &discoverer{cfg: cfg, clock: clock.OrSystem(cfg.Clock), log: loggerOrDiscard(cfg.Logger)}
	if d.cfg.ProbeTimeout <= 0 {
		d.cfg.ProbeTimeout = defaultProbeTimeout
	}
	d.setRTO(&rtt.Estimator{})
	start := d.clock.Now()
	d.client = client
	var shared error
	if d.client == nil {
		d.client = NewClient(conn, ClientConfig{RTO: cfg.RTO, Clock: cfg.Clock, Logger: cfg.Logger})
		defer d.client.Close()
		// The trap of a socket the UA already reads: its loop takes the
		// STUN answers and this one sees none. Prove delivery at once and
		// stop with words instead of "UDP is blocked" after the timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.client.CheckDelivery(ctx); errors.Is(err, ErrSharedSocket) {
				d.sharedMu.Lock()
				d.shared = err
				d.sharedMu.Unlock()
				cancel()
			}
		}()
	}
	d.conn = d.client.conn
	res, err := d.run(ctx)
	d.sharedMu.Lock()
	shared = d.shared
	d.sharedMu.Unlock()
	if shared != nil && (res == nil || res.Method == MethodNone || err != nil) {
		return nil, fmt.Errorf("discover: %w", shared)
	}
	if res != nil {
		if cfg.GatewayExternal.IsValid() {
			res.CompareGateway(cfg.GatewayExternal)
		}
		res.SIP = verdict(res)
		res.Elapsed = d.clock.Now().Sub(start)
	}
	return res, err
}

type discoverer struct {
	cfg    DiscoverConfig
	clock  clock.Clock
	log    *slog.Logger
	client *Client
	conn   net.PacketConn
	rto    time.Duration // derived from the first bindings' RTTs
	pace   time.Duration // interval of the probes the NAT may filter

	sharedMu sync.Mutex
	shared   error // set when CheckDelivery proved the answers go elsewhere
}

func (d *discoverer) run(ctx context.Context) (*Result, error) {
	res := &Result{Local: callerconn.AddrPortOf(d.conn.LocalAddr())}
	firsts, errs := d.bindAll(ctx)
	pi := -1
	for i := range firsts {
		if errs[i] == nil {
			pi = i
			break
		}
	}
	if pi < 0 {
		res.Method, res.Mapping, res.Filtering, res.Classic = MethodNone, Blocked, Blocked, UDPBlocked
		return res, fmt.Errorf("discover: no STUN server answered: %w", errors.Join(errs...))
	}
	r1 := firsts[pi]
	primary := d.cfg.Servers[pi]
	res.Server, res.Public = primary, r1.Mapped
	natted := !d.isLocal(r1.Mapped)
	res.PortPreserved = natted && r1.Mapped.Port() == res.Local.Port()
	alt := d.reach(r1.Other)
	res.NAT64 = d.cfg.NAT64
	switch {
	case alt.IsValid() && !r1.Legacy:
		res.Method = MethodRFC5780
	case alt.IsValid():
		res.Method = MethodRFC3489
	default:
		res.Method = MethodBasic
		for i := range firsts {
			if i != pi && errs[i] == nil {
				res.Method = MethodTwoServer
				res.MappingVaries = !sameMapping(firsts[i].Mapped, r1.Mapped)
				break
			}
		}
	}

	var wg sync.WaitGroup
	var mapping, filtering Behavior
	var hairpin *bool
	var lt lifetimeResult
	if alt.IsValid() {
		wg.Add(2)
		go func() { defer wg.Done(); mapping = d.mapping(ctx, r1, primary, alt, natted) }()
		go func() { defer wg.Done(); filtering = d.filtering(ctx, primary, alt) }()
	} else if res.Method == MethodTwoServer {
		mapping = EndpointIndependent
		if res.MappingVaries {
			mapping = Unknown
		}
		if !natted {
			mapping = None
		}
	}
	if natted {
		wg.Add(1)
		go func() { defer wg.Done(); hairpin = d.hairpin(ctx, d.reach(r1.Mapped), primary) }()
		if d.cfg.LifetimeMax > 0 {
			wg.Add(1)
			go func() { defer wg.Done(); lt = d.lifetime(ctx, primary) }()
		}
	}
	wg.Wait()
	if !natted && d.cfg.LifetimeMax > 0 && (filtering == AddressDependent || filtering == AddressAndPortDependent) {
		// No NAT but a stateful firewall (an IPv6 home gateway, RFC 6092):
		// it forgets idle UDP state as a NAT forgets bindings, and the same
		// probes measure when.
		lt = d.lifetime(ctx, primary)
	}
	if !natted {
		mapping = None
		if filtering == EndpointIndependent {
			filtering = None
		}
	}
	res.Mapping, res.Filtering, res.Hairpin = mapping, filtering, hairpin
	res.MappingVaries = res.MappingVaries || mapping == AddressDependent || mapping == AddressAndPortDependent
	res.Classic = classicOf(mapping, filtering)
	if res.Method == MethodTwoServer && res.MappingVaries {
		res.Classic = Symmetric
	}
	res.Lifetime, res.LifetimeBound = lt.alive, lt.gone
	l := ipaddr.CompareLayers(netip.Addr{}, res.Public.Addr())
	res.CGNAT, res.DoubleNAT = l.CGNAT, l.DoubleNAT
	// A context that ended during the lifetime search only leaves the
	// lifetime a lower bound; one that cut the classification short is an
	// error.
	if err := ctx.Err(); err != nil && (res.Mapping == Unknown || alt.IsValid() && res.Filtering == Unknown) {
		return res, fmt.Errorf("discover: cut short: %w", err)
	}
	return res, nil
}

func sameMapping(a, b netip.AddrPort) bool { return a == b }

// bindAll sends test I to every server at once. As soon as one answers,
// the round-trip time is known: the servers still silent are asked again
// at the pace it implies (fast, bounded by ProbeTimeout) instead of
// waiting out the slow default schedule. The first answer's RTT sets
// d.rto and d.pace.
func (d *discoverer) bindAll(ctx context.Context) ([]Response, []error) {
	n := len(d.cfg.Servers)
	out, errs := make([]Response, n), make([]error, n)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan int, n)
	for i, s := range d.cfg.Servers {
		go func() {
			out[i], errs[i] = d.client.BindingWith(actx, s, BindingOptions{})
			done <- i
		}()
	}
	first := -1
	for left := n; left > 0; left-- {
		i := <-done
		if errs[i] == nil && first < 0 {
			first = i
			var est rtt.Estimator
			est.Add(out[i].RTT)
			d.setRTO(&est)
			cancel() // the rest are asked again below
		}
	}
	if first < 0 || n == 1 {
		return out, errs
	}
	pctx, pcancel := context.WithTimeout(ctx, d.cfg.ProbeTimeout)
	defer pcancel()
	var wg sync.WaitGroup
	for i, s := range d.cfg.Servers {
		if errs[i] == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Paced, not doubling: a doubling RTO derived from a slow
			// first answer fit only three requests into ProbeTimeout,
			// too few under loss (a second server went unseen, so
			// two-server discovery fell back to basic).
			p := &pace{rounds: probeRounds, reached: make(chan struct{})}
			out[i], errs[i] = d.client.transact(pctx, s, d.pacedOpts(BindingOptions{}), d.client.conn, false, p)
		}()
	}
	wg.Wait()
	return out, errs
}

// isLocal reports whether m is the socket's own address (no NAT).
func (d *discoverer) isLocal(m netip.AddrPort) bool {
	local := callerconn.AddrPortOf(d.conn.LocalAddr())
	if m.Port() != local.Port() {
		return false
	}
	if !local.Addr().IsUnspecified() {
		return m.Addr() == local.Addr()
	}
	addrs := d.cfg.LocalAddrs
	if addrs == nil {
		addrs = HostAddrs()
	}
	for _, a := range addrs {
		if a.Unmap() == m.Addr() {
			return true
		}
	}
	return false
}

// HostAddrs returns the addresses of the host's interfaces (IPv4-mapped ones
// unmapped); nil when they cannot be read.
func HostAddrs() []netip.Addr {
	ifs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range ifs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// mapping runs RFC 5780 section 4.3 tests II and III concurrently on the
// caller's socket.
func (d *discoverer) mapping(ctx context.Context, r1 Response, primary, alt netip.AddrPort, natted bool) Behavior {
	if !natted {
		return None
	}
	var r2, r3 Response
	var e2, e3 error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r2, e2 = d.client.BindingWith(ctx, netip.AddrPortFrom(alt.Addr(), primary.Port()), d.probeOpts(BindingOptions{}))
	}()
	go func() {
		defer wg.Done()
		r3, e3 = d.client.BindingWith(ctx, alt, d.probeOpts(BindingOptions{}))
	}()
	wg.Wait()
	switch {
	case e2 != nil:
		d.log.Debug("nat: mapping test II failed", "err", e2)
		return Unknown
	case r2.Mapped == r1.Mapped:
		return EndpointIndependent
	case e3 != nil:
		d.log.Debug("nat: mapping test III failed", "err", e3)
		return Unknown
	case r3.Mapped == r2.Mapped:
		return AddressDependent
	}
	return AddressAndPortDependent
}

// listen opens an extra socket for probes, on the tested socket's IP.
func (d *discoverer) listen(ctx context.Context) (net.PacketConn, error) {
	ip := callerconn.AddrPortOf(d.conn.LocalAddr()).Addr()
	network := "udp6"
	switch {
	case !ip.IsValid():
		ip, network = netip.IPv4Unspecified(), "udp4"
	case ip.Is4() || ip.Is4In6():
		ip, network = ip.Unmap(), "udp4"
	}
	addr := netip.AddrPortFrom(ip, 0).String()
	if d.cfg.ListenPacket != nil {
		return d.cfg.ListenPacket(ctx, network, addr)
	}
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, network, addr)
}

// filtering runs RFC 5780 section 4.4 tests II and III concurrently on an
// extra socket that has contacted only the primary address.
func (d *discoverer) filtering(ctx context.Context, primary, alt netip.AddrPort) Behavior {
	pc, err := d.listen(ctx)
	if err != nil {
		d.log.Debug("nat: filtering socket", "err", err)
		return Unknown
	}
	defer pc.Close()
	c := NewClient(pc, ClientConfig{Clock: d.cfg.Clock, Logger: d.cfg.Logger})
	defer c.Close()
	if _, err := c.BindingWith(ctx, primary, d.probeOpts(BindingOptions{})); err != nil {
		d.log.Debug("nat: filtering test I failed", "err", err)
		return Unknown
	}
	control := func(ctx context.Context) error {
		_, err := c.BindingWith(ctx, primary, d.probeOpts(BindingOptions{}))
		return err
	}
	changeReq := func(o BindingOptions) probe {
		return func(ctx context.Context, p *pace) error {
			_, err := c.transact(ctx, primary, d.pacedOpts(o), pc, false, p)
			return err
		}
	}
	errs := d.await(ctx, control,
		changeReq(BindingOptions{ChangeIP: true, ChangePort: true, From: alt}),
		changeReq(BindingOptions{ChangePort: true, From: netip.AddrPortFrom(primary.Addr(), alt.Port())}))
	e2, e3 := errs[0], errs[1]
	var se *ServerError
	switch {
	case e2 == nil:
		return EndpointIndependent
	case errors.As(e2, &se), errors.As(e3, &se):
		d.log.Debug("nat: server refused CHANGE-REQUEST", "err", se)
		return Unknown
	case e3 == nil:
		return AddressDependent
	case ctx.Err() != nil:
		return Unknown
	}
	return AddressAndPortDependent
}

// hairpin sends a Binding request from the caller's socket to its own
// mapped address (RFC 5780 section 4.5); receiving it means hairpinning.
func (d *discoverer) hairpin(ctx context.Context, mapped, primary netip.AddrPort) *bool {
	err := d.await(ctx, d.control(primary), func(ctx context.Context, p *pace) error {
		_, err := d.client.transact(ctx, mapped, d.pacedOpts(BindingOptions{}), d.conn, true, p)
		return err
	})[0]
	if err != nil && ctx.Err() != nil {
		return nil
	}
	ok := err == nil
	return &ok
}

// control returns a control for await: a Binding from the caller's socket to
// primary.
func (d *discoverer) control(primary netip.AddrPort) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := d.client.BindingWith(ctx, primary, d.probeOpts(BindingOptions{}))
		return err
	}
}
