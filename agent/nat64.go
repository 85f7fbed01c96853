package agent

import (
	"context"
	"net/netip"

	"github.com/sipnat/sipnat/discovery"
)

// nat64Prefix is the NAT64 prefix in use: Config.NAT64 or what Start found.
func (a *Agent) nat64Prefix() netip.Prefix {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nat64
}

// detectNAT64 runs discovery.DetectNAT64 when Config.DetectNAT64 asks for
// it and the SIP socket is IPv6 (only an IPv6-only host needs a NAT64),
// and keeps the first prefix it finds. The PCP question goes to the
// gateway unless port mapping is disabled.
func (a *Agent) detectNAT64(ctx context.Context) {
	cfg := &a.cfg
	if !cfg.DetectNAT64 || cfg.NAT64.IsValid() || !a.local.Addr().Is6() || a.local.Addr().Is4In6() {
		return
	}
	ncfg := discovery.NAT64Config{Resolver: cfg.Resolver}
	if cfg.allowed(PortMapping) {
		local := a.local.Addr()
		if local.IsUnspecified() {
			local = netip.Addr{}
		}
		ncfg.PCP = &discovery.MapperConfig{Gateway: cfg.Gateway, LocalAddr: local,
			DialContext: cfg.DialContext, ListenPacket: cfg.ListenPacket, Clock: cfg.Clock, Logger: cfg.Logger}
	}
	n, err := discovery.DetectNAT64(ctx, ncfg)
	if err != nil {
		a.log.Debug("agent: no NAT64", "err", err)
		return
	}
	a.log.Info("agent: NAT64", "prefix", n.Prefixes[0], "from", n.From)
	a.mu.Lock()
	a.nat64, a.nat64Found = n.Prefixes[0], &n
	a.mu.Unlock()
}
