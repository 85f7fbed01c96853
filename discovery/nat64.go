package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sipnat/sipnat/ipaddr"
)

// ErrNoNAT64 is returned by DetectNAT64 when no source showed a NAT64: the
// resolver has no synthesised AAAA for ipv4only.arpa and the gateway's PCP
// server sent no PREFIX64 (or was not asked).
var ErrNoNAT64 = errors.New("discovery: no NAT64 prefix (no DNS64 synthesis of ipv4only.arpa, no PCP PREFIX64)")

// ErrNoPrefix64 is returned by Mapper.Prefix64 when the PCP server
// answered without a PREFIX64 option: it does not implement RFC 7225 (as
// miniupnpd does not) or has no NAT64.
var ErrNoPrefix64 = errors.New("discovery: the PCP server sent no PREFIX64 option")

// NAT64Source says where a NAT64 prefix came from.
type NAT64Source string

// The NAT64 prefix sources.
const (
	// FromDNS64: the AAAA records of ipv4only.arpa (RFC 7050).
	FromDNS64 NAT64Source = "dns64"
	// FromPCP: the gateway's PCP PREFIX64 option (RFC 7225).
	FromPCP NAT64Source = "pcp"
)

// NAT64 is what DetectNAT64 found.
type NAT64 struct {
	// Prefixes are the NAT64 prefixes, the one to use first: from PCP, a
	// prefix for every IPv4 address comes before one limited to some.
	Prefixes []netip.Prefix `json:"prefixes"`
	// From is the source that answered.
	From NAT64Source `json:"from"`
}

// NAT64Config says which sources DetectNAT64 asks.
type NAT64Config struct {
	// Resolver is asked for ipv4only.arpa (RFC 7050); nil asks
	// net.DefaultResolver, the system's DNS servers, where a DNS64 sits on
	// an IPv6-only network.
	Resolver *net.Resolver
	// NoDNS skips the DNS question (a caller that knows its resolver is
	// no DNS64, or that must send nothing to the system's DNS servers).
	NoDNS bool
	// PCP, when set, asks for PREFIX64 (RFC 7225) the gateway's PCP
	// server that a Mapper of this configuration asks (Mapper.Prefix64, on
	// a Mapper DetectNAT64 makes and closes; Protocols and, when zero,
	// PMPTimeout are set to PCP only and 1 s).
	PCP *MapperConfig
}

// nat64Wait bounds DetectNAT64 when ctx does not end sooner.
const nat64Wait = 5 * time.Second

// DetectNAT64 finds the NAT64 prefixes of the network: it asks the DNS64
// (RFC 7050) and the gateway's PCP server (RFC 7225) at once and returns
// the first answer that names a prefix, cancelling the other question.
// Both are the network's own statements of the same prefix; neither is
// preferred, so the faster one decides. When neither names one the error
// matches ErrNoNAT64 and says what each source answered.
//
// This is the one rule of NAT64 detection: the agent (Config.DetectNAT64)
// and natcheck use it. An IPv6-only UA uses the prefix to reach IPv4 peers
// whose literals it finds in SIP and SDP (ipaddr.SynthesizeNAT64) and to
// discover its public IPv4 address through the NAT64 (nat.DiscoverConfig.NAT64).
func DetectNAT64(ctx context.Context, cfg NAT64Config) (NAT64, error) {
	ctx, cancel := context.WithTimeout(ctx, nat64Wait)
	defer cancel()
	type answer struct {
		n   NAT64
		err error
	}
	answers := make(chan answer, 2)
	var wg sync.WaitGroup
	asked := 0
	if !cfg.NoDNS {
		asked++
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := dns64Prefixes(ctx, cfg.Resolver)
			answers <- answer{NAT64{Prefixes: p, From: FromDNS64}, err}
		}()
	}
	if cfg.PCP != nil {
		mc := *cfg.PCP
		mc.Protocols, mc.AnnounceAddr, mc.OnEvent = []Protocol{ProtoPCP}, "", nil
		if mc.PMPTimeout <= 0 {
			mc.PMPTimeout = time.Second
		}
		m := NewMapper(mc)
		defer m.Close()
		asked++
		wg.Add(1)
		go func() {
			defer wg.Done()
			p64, err := m.Prefix64(ctx)
			answers <- answer{NAT64{Prefixes: prefixesOf(p64), From: FromPCP}, err}
		}()
	}
	defer wg.Wait()
	var errs []error
	for range asked {
		a := <-answers
		if a.err == nil && len(a.n.Prefixes) > 0 {
			return a.n, nil
		}
		if a.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.n.From, a.err))
		}
	}
	if asked == 0 {
		errs = append(errs, errors.New("no source to ask (NoDNS and no PCP)"))
	}
	return NAT64{}, fmt.Errorf("detect NAT64: %w: %w", ErrNoNAT64, errors.Join(errs...))
}

// prefixesOf lists the prefixes of PREFIX64 options, those for every IPv4
// address first, without duplicates.
func prefixesOf(p64 []Prefix64) []netip.Prefix {
	var out []netip.Prefix
	for _, all := range []bool{true, false} {
		for _, p := range p64 {
			if (len(p.IPv4) == 0) != all {
				continue
			}
			dup := false
			for _, q := range out {
				dup = dup || q == p.Prefix
			}
			if !dup {
				out = append(out, p.Prefix)
			}
		}
	}
	return out
}

// ipv4OnlyName is the name whose AAAA records a DNS64 synthesises (RFC 7050).
const ipv4OnlyName = "ipv4only.arpa"

// dns64Prefixes asks r (nil: net.DefaultResolver) for the AAAA records of
// ipv4only.arpa and returns the prefixes in which they embed 192.0.0.170
// or 192.0.0.171 (ipaddr.NAT64PrefixesFrom).
func dns64Prefixes(ctx context.Context, r *net.Resolver) ([]netip.Prefix, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip6", ipv4OnlyName)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, fmt.Errorf("%s has no AAAA record: %w", ipv4OnlyName, ErrNoNAT64)
		}
		return nil, fmt.Errorf("look up %s AAAA: %w", ipv4OnlyName, err)
	}
	prefixes := ipaddr.NAT64PrefixesFrom(addrs)
	if len(prefixes) == 0 {
		return nil, fmt.Errorf("%s AAAA %v embeds no well-known address: %w", ipv4OnlyName, addrs, ErrNoNAT64)
	}
	return prefixes, nil
}
