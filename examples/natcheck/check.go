package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/ipaddr"
	"github.com/sipnat/sipnat/nat"
)

// options are what the flags set, plus the socket makers a test in a
// network namespace replaces.
type options struct {
	servers   []netip.AddrPort // resolved, in the order given
	names     []string         // as given
	selfTest  bool
	local     netip.AddrPort
	lifetime  time.Duration
	portMap   bool
	gateway   netip.Addr
	hostAddrs func() []netip.Addr // the host's addresses (IPv6 line)
	resolver  *net.Resolver       // the DNS64 asked for NAT64 (nil: the system's)

	listenPacket func(ctx context.Context, network, addr string) (net.PacketConn, error)
	dialContext  func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o *options) listen(ctx context.Context, network string, a netip.AddrPort) (net.PacketConn, error) {
	if o.listenPacket != nil {
		return o.listenPacket(ctx, network, a.String())
	}
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, network, a.String())
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" {
			return "sipnat " + v
		}
	}
	return "sipnat (devel)"
}

// check runs every test the options allow and reports what it found.
// The error is non-nil only when nothing could be tested.
func check(ctx context.Context, o options) (*Report, error) {
	start := time.Now()
	r := &Report{Tool: "natcheck", Version: version(), Time: start.UTC().Truncate(time.Second), SelfTest: o.selfTest}
	defer func() { r.DurationMS = ms(time.Since(start)) }()

	// The main test runs in the first server's family; servers of the
	// other family serve the IPv6 line.
	family := false // IPv4 when any server is IPv4
	for _, s := range o.servers {
		family = family || s.Addr().Is4()
	}
	var main, other []int
	for i, s := range o.servers {
		if s.Addr().Is4() == family {
			main = append(main, i)
		} else {
			other = append(other, i)
		}
	}
	network, laddr := "udp4", o.local
	if !family {
		network = "udp6"
		if laddr == netip.AddrPortFrom(netip.IPv4Unspecified(), 0) {
			laddr = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
		}
	}
	conn, err := o.listen(ctx, network, laddr)
	if err != nil {
		return nil, fmt.Errorf("open the test socket %s: %w", laddr, err)
	}
	defer conn.Close()
	r.Local = conn.LocalAddr().String()
	client := nat.NewClient(conn, nat.ClientConfig{})
	defer client.Close()

	// An IPv6-only test: is there a NAT64, and where does it translate?
	// (discovery.DetectNAT64, the rule the agent follows too)
	var nat64 netip.Prefix
	loopback := true
	for _, a := range o.servers {
		loopback = loopback && a.Addr().IsLoopback()
	}
	switch {
	case family || o.selfTest:
	case loopback:
		r.NotTested = append(r.NotTested, "NAT64: every server is on loopback")
	default:
		r.NAT64 = checkNAT64(ctx, o)
		if len(r.NAT64.Prefixes) > 0 {
			nat64 = r.NAT64.Prefixes[0]
		}
	}

	// Every server once, at once: reachability, public address, RTT.
	r.Servers = make([]ServerReport, len(o.servers))
	// A silent server gets at most half the time left, so the behaviour
	// tests still run with the ones that answer.
	wait := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/2)
	}
	var wg sync.WaitGroup
	for _, i := range main {
		r.Servers[i] = ServerReport{Server: o.names[i], Addr: o.servers[i]}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			resp, err := client.BindingWith(sctx, o.servers[i], nat.BindingOptions{})
			if err != nil {
				r.Servers[i].Error = describe(err, wait)
				return
			}
			r.Servers[i].Public, r.Servers[i].RTTMS = resp.Mapped, float64(resp.RTT.Microseconds())/1000
		}()
	}
	var gw *discovery.ProbeResult
	var mapper *discovery.Mapper
	if o.portMap && !o.selfTest {
		mapper = discovery.NewMapper(discovery.MapperConfig{Gateway: o.gateway, Lifetime: 2 * time.Minute, Description: "sipnat natcheck test",
			DialContext: o.dialContext, ListenPacket: o.listenPacket, PMPTimeout: 2 * time.Second, UPnPTimeout: 3 * time.Second})
		defer mapper.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			p, err := mapper.Probe(pctx)
			r.Gateway = &GatewayReport{Gateway: p.Gateway, PCP: p.PCP, NATPMP: p.NATPMP, UPnP: p.UPnP, External: p.External}
			if err != nil {
				r.Gateway.Errors = append(r.Gateway.Errors, "probe: "+err.Error())
			}
			for _, e := range []struct{ name, err string }{{"PCP", p.PCPErr}, {"NAT-PMP", p.NATPMPErr}, {"UPnP", p.UPnPErr}} {
				if e.err != "" {
					r.Gateway.Errors = append(r.Gateway.Errors, e.name+": "+e.err)
				}
			}
			gw = &p
		}()
	} else {
		why := "port mapping (UPnP IGD, NAT-PMP, PCP): -portmap=false"
		if o.selfTest {
			why = "port mapping (UPnP IGD, NAT-PMP, PCP): not asked in the self-test"
		}
		r.NotTested = append(r.NotTested, why)
	}
	wg.Wait()

	var answered []netip.AddrPort
	for _, i := range main {
		if r.Servers[i].Error == "" {
			answered = append(answered, o.servers[i])
		} else {
			r.Errors = append(r.Errors, fmt.Sprintf("server %s: %s", o.names[i], r.Servers[i].Error))
		}
	}
	if len(answered) == 0 {
		r.UDP = "blocked: no STUN server answered over UDP"
		var errs []string
		r.IPv6, errs = checkIPv6(ctx, o, other, r)
		r.Errors = append(r.Errors, errs...)
		return r, fmt.Errorf("no STUN server answered: %w", nat.ErrNoResponse)
	}
	r.UDP = "works"
	// The IPv6 line runs beside the IPv4 discovery: both may measure a
	// lifetime, which takes as long as the lifetime.
	var v6 *IPv6Report
	var v6Errs []string
	v6Done := make(chan struct{})
	if family {
		go func() { defer close(v6Done); v6, v6Errs = checkIPv6(ctx, o, other, r) }()
	} else {
		close(v6Done)
	}

	res, err := client.Discover(ctx, nat.DiscoverConfig{Servers: answered, LifetimeMax: o.lifetime, ListenPacket: o.listenPacket,
		LocalAddrs: o.hostAddrs(), NAT64: nat64})
	if err != nil {
		r.Errors = append(r.Errors, "behaviour discovery: "+err.Error())
	}
	if res != nil {
		r.NAT = natReport(res, o.lifetime)
	}

	// The test mapping, then CGNAT and double NAT from the gateway's
	// external address against STUN (ipaddr.CompareLayers, the one rule).
	var mapping *discovery.Mapping
	if gw != nil && (gw.PCP || gw.NATPMP || gw.UPnP) {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := mapper.Map(mctx, "udp", addrOf(conn).Port())
		if err != nil {
			r.Gateway.Errors = append(r.Gateway.Errors, "test mapping: "+err.Error())
		} else {
			mapping = &m
			r.Gateway.Mapped, r.Gateway.Via = m.External, m.Protocol.String()
			if !r.Gateway.External.IsValid() {
				r.Gateway.External = m.External.Addr()
			}
			if err := mapper.Unmap(mctx, "udp", addrOf(conn).Port()); err != nil {
				r.Gateway.Errors = append(r.Gateway.Errors, "deleting the test mapping: "+err.Error())
			} else {
				r.Gateway.Deleted = true
			}
		}
		cancel()
	}
	var public netip.Addr
	if res != nil {
		public = res.Public.Addr()
	}
	var gwExt netip.Addr
	if r.Gateway != nil {
		gwExt = r.Gateway.External
	}
	layers := ipaddr.CompareLayers(gwExt, public)
	switch {
	case gwExt.IsValid() || layers.CGNAT:
		reason := layers.Reason
		if reason == "" {
			reason = fmt.Sprintf("the gateway's external address %s is the public address a STUN server sees", gwExt)
		}
		r.CGNAT = &Finding{Yes: layers.CGNAT, Reason: reason}
		r.Double = &Finding{Yes: layers.DoubleNAT, Reason: reason}
		if !layers.CGNAT && layers.DoubleNAT {
			r.CGNAT.Reason = "no shared (RFC 6598) address seen; " + reason
		}
	case o.selfTest:
		r.NotTested = append(r.NotTested, "CGNAT and double NAT: the self-test runs on loopback")
	case res != nil && res.Mapping == nat.None:
		r.CGNAT = &Finding{Reason: "no NAT: the socket's own address is public"}
		r.Double = &Finding{Reason: "no NAT: the socket's own address is public"}
	default:
		r.NotTested = append(r.NotTested, "CGNAT and double NAT: the gateway reported no external address to compare with STUN")
	}

	<-v6Done
	if family {
		r.IPv6 = v6
		r.Errors = append(r.Errors, v6Errs...)
	} else if res != nil { // the main test was the IPv6 one
		r.IPv6 = &IPv6Report{HostAddrs: globalIPv6(o.hostAddrs())}
		if res.Public.Addr().Is4() { // through the NAT64: the NAT lines are the IPv4 NAT's
			r.IPv6.Note = fmt.Sprintf("IPv6-only: IPv4 is reached through the NAT64 (%s); the lines above are the IPv4 NAT behind it", nat64)
		} else {
			r.IPv6.behaviour(res, o.hostAddrs())
		}
	}

	if o.selfTest {
		r.NotTested = append(r.NotTested, "SIP verdict: the self-test says nothing about the network")
		return r, nil
	}
	// The SIP verdict: the agent's decision on what was measured.
	local := addrOf(conn)
	obs := discovery.Observations{Local: local, Mapping: mapping}
	if res != nil {
		obs.STUN = res.Public
	}
	if r.Gateway != nil {
		obs.Gateway = r.Gateway.External
	}
	if res != nil {
		res.CompareGateway(gwExt)
	}
	p := agent.Decide(agent.Observations{Local: local, STUNServers: true, NAT: res, LifetimeAsked: o.lifetime,
		Choice: discovery.Reconcile(obs), Probe: gw})
	r.SIP = &SIPVerdict{Decision: p.Decision, ContactFrom: p.ContactFrom, Contact: p.Contact, Relay: p.Relay.Needed,
		IncomingCalls: p.IncomingCalls, TwoWayAudio: p.TwoWayAudio}
	if p.KeepAlive.Kind != 0 {
		r.SIP.KeepAliveMS, r.SIP.KeepAliveNote = ms(p.KeepAlive.Interval), "half the measured binding lifetime"
		if p.KeepAlive.Assumed {
			r.SIP.KeepAliveNote = "assumed: the binding lifetime was not measured (-lifetime)"
		}
	}
	return r, nil
}

func addrOf(c net.PacketConn) netip.AddrPort {
	if u, ok := c.LocalAddr().(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(c.LocalAddr().String())
	return ap
}

// describe says in words why a server gave nothing.
func describe(err error, wait time.Duration) string {
	var se *nat.ServerError
	switch {
	case errors.As(err, &se):
		return "answered with an error: " + se.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Sprintf("no answer within %v", wait.Round(time.Millisecond))
	case errors.Is(err, nat.ErrNoResponse):
		return "no answer (every retransmission went unanswered)"
	case errors.Is(err, nat.ErrMalformed):
		return "answered with something unusable: " + err.Error()
	}
	return err.Error()
}

func natReport(res *nat.Result, asked time.Duration) *NATReport {
	n := &NATReport{Method: res.Method, Server: res.Server, Public: res.Public, Mapping: res.Mapping,
		Filtering: res.Filtering, Classic: res.Classic, Hairpin: res.Hairpin}
	natted := res.Mapping != nat.None && res.Public.IsValid()
	if natted {
		pp := res.PortPreserved
		n.PortPreserved = &pp
	}
	switch {
	case !natted:
	case asked == 0:
		n.LifetimeNote = "not measured (give -lifetime to measure it)"
	case res.Lifetime == 0:
		n.LifetimeNote = fmt.Sprintf("not measurable with this server (%s: RESPONSE-PORT unsupported or ignored)", res.Method)
	default:
		n.LifetimeMS, n.LifetimeGoneMS = ms(res.Lifetime), ms(res.LifetimeBound)
	}
	return n
}

// checkIPv6 reports the host's global IPv6 addresses and, with an IPv6
// server among -server, what it sees.
//
// It writes only r.Servers of the given indices, so it may run beside the
// IPv4 discovery; its errors are returned for the caller to add.
func checkIPv6(ctx context.Context, o options, servers []int, r *Report) (v *IPv6Report, errs []string) {
	v = &IPv6Report{HostAddrs: globalIPv6(o.hostAddrs())}
	if len(servers) == 0 {
		if len(v.HostAddrs) == 0 {
			v.Note = "the host has no global IPv6 address"
		} else {
			v.Note = fmt.Sprintf("the host has %v; not tested (no IPv6 STUN server among -server)", v.HostAddrs)
		}
		return v, errs
	}
	conn, err := o.listen(ctx, "udp6", netip.AddrPortFrom(netip.IPv6Unspecified(), 0))
	if err != nil {
		v.Note = "no IPv6 socket: " + err.Error()
		return v, errs
	}
	defer conn.Close()
	c := nat.NewClient(conn, nat.ClientConfig{})
	defer c.Close()
	var answered []netip.AddrPort
	for _, i := range servers {
		r.Servers[i] = ServerReport{Server: o.names[i], Addr: o.servers[i]}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := c.BindingWith(sctx, o.servers[i], nat.BindingOptions{})
		cancel()
		if err != nil {
			r.Servers[i].Error = describe(err, 5*time.Second)
			errs = append(errs, fmt.Sprintf("server %s: %s", o.names[i], r.Servers[i].Error))
			continue
		}
		r.Servers[i].Public, r.Servers[i].RTTMS = resp.Mapped, float64(resp.RTT.Microseconds())/1000
		answered = append(answered, o.servers[i])
	}
	if len(answered) == 0 {
		v.Note = "no IPv6 STUN server answered"
		return v, errs
	}
	// The RFC 4787 questions without translation: what a firewall (or
	// NPTv6/NAT66) does to the flow, from the same probes as over IPv4.
	res, err := c.Discover(ctx, nat.DiscoverConfig{Servers: answered, LifetimeMax: o.lifetime, ListenPacket: o.listenPacket, LocalAddrs: o.hostAddrs()})
	if err != nil {
		errs = append(errs, "IPv6 behaviour discovery: "+err.Error())
	}
	if res == nil || !res.Public.IsValid() {
		v.Note = "the IPv6 behaviour discovery found no public address"
		return v, errs
	}
	v.behaviour(res, o.hostAddrs())
	return v, errs
}

// behaviour fills the IPv6 line from a discovery over IPv6: the address
// the server saw, the translation (ipaddr.TranslationOf against the
// host's addresses), mapping and filtering.
func (v *IPv6Report) behaviour(res *nat.Result, host []netip.Addr) {
	v.Server, v.Public, v.Method = res.Server, res.Public, res.Method
	v.Mapping, v.Filtering = res.Mapping, res.Filtering
	v.Translation = ipaddr.TranslationOf(host, res.Public.Addr())
	if res.Mapping == nat.None {
		// the server saw the socket's own address, whatever the host list says
		v.Translation = ipaddr.NoTranslation
	}
	translated := v.Translation != ipaddr.NoTranslation
	v.Translated = &translated
	if res.Lifetime > 0 { // the firewall's (or NAT66's) UDP state, measured with -lifetime
		v.LifetimeMS, v.LifetimeGoneMS = ms(res.Lifetime), ms(res.LifetimeBound)
	}
}

// checkNAT64 asks the network for its NAT64 prefix: the DNS64 and, with
// -portmap, the gateway's PCP server (RFC 7225 PREFIX64) at once.
func checkNAT64(ctx context.Context, o options) *NAT64Report {
	cfg := discovery.NAT64Config{Resolver: o.resolver}
	if o.portMap {
		cfg.PCP = &discovery.MapperConfig{Gateway: o.gateway, DialContext: o.dialContext, ListenPacket: o.listenPacket}
	}
	n, err := discovery.DetectNAT64(ctx, cfg)
	if err != nil {
		return &NAT64Report{Note: err.Error()}
	}
	return &NAT64Report{Prefixes: n.Prefixes, From: n.From}
}

func globalIPv6(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if a.Is6() && !a.Is4In6() && ipaddr.IsGlobal(a) {
			out = append(out, a)
		}
	}
	return out
}
