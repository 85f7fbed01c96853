package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/sipnat/sipnat/sipmsg"
)

// CallTarget is an outgoing call's Request-URI host, the hint at the
// peer's family before its SDP (FamilyInputs.Target).
type CallTarget struct {
	// Name is the host when it is a name ("" for an IP literal).
	Name string `json:"name,omitempty"`
	// Addrs are the IP literal, or the name's DNS addresses (A and AAAA).
	Addrs []netip.Addr `json:"addrs,omitempty"`
}

// ResolveTarget returns the CallTarget of a SIP URI (sip:bob@host...):
// its host when that is an IP literal; for a name, the host's A and AAAA
// addresses from r (nil: net.DefaultResolver). RFC 3263's NAPTR and SRV
// steps are not taken: they find the domain's SIP servers, which say no
// more of the peer's media than the proxy does. A name that does not
// resolve gives its CallTarget without addresses and the error; the
// family choice then falls back to the proxy and says why.
func ResolveTarget(ctx context.Context, r *net.Resolver, uri string) (CallTarget, error) {
	b := []byte(uri)
	u, err := sipmsg.ParseURI(b, sipmsg.Span{End: len(b)})
	if err != nil {
		return CallTarget{}, fmt.Errorf("call target %q: %w", uri, err)
	}
	if a, ok := u.Addr(b); ok {
		return CallTarget{Addrs: []netip.Addr{a.Unmap()}}, nil
	}
	t := CallTarget{Name: string(u.Host.In(b))}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", t.Name)
	if err != nil {
		return t, fmt.Errorf("call target %s: resolve: %w", t.Name, err)
	}
	for _, a := range addrs {
		t.Addrs = append(t.Addrs, a.Unmap())
	}
	return t, nil
}
