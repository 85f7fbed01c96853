package sipmsg

import (
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// DestPolicy says where a proxy may send SIP when a message names the
// destination: an ;alias= in a Request-URI (HandleRURIAlias), a received
// URI a registrar stored, a Request-URI host. Without it an edge proxy is
// a way to send SIP anywhere: to its own loopback services, to itself (a
// loop), to the operator's private networks, or to port 0.
//
// A destination is allowed when its port is not 0, its address is none of
// Self, and its class (ipaddr.Classify) is public or documentation, or it is
// inside one of Allow. Loopback, unspecified, multicast, link-local, the
// IPv4 reserved range 240.0.0.0/4 (with the broadcast address), private and
// RFC 6598 shared addresses are refused unless Allow holds them. The zero
// DestPolicy allows public destinations only.
//
// An address class cannot stop a forged alias that names some public host:
// with AliasKey set, only aliases the proxy signed itself are followed (an
// HMAC, like the flow tokens of AppendFlowToken).
type DestPolicy struct {
	// Self are the proxy's own addresses (any port): never a destination.
	Self []netip.Addr
	// Allow are ranges allowed although their class is not, such as the
	// operator's own private network or a test lab. Self wins over Allow.
	Allow []netip.Prefix
	// AliasKey, when set, makes RURIAlias and HandleRURIAlias follow only
	// aliases signed with this key (Fix.AliasKey): then no request can name
	// a destination, public or not, where the proxy did not see a UA.
	AliasKey []byte
}

var reserved4 = netip.MustParsePrefix("240.0.0.0/4")

// Check returns nil when p allows sending to a, else an error matching
// ErrForbiddenDestination that names the address and why.
func (p *DestPolicy) Check(a netip.AddrPort) error {
	ip := a.Addr().Unmap()
	if !ip.IsValid() || a.Port() == 0 {
		return &DestError{Addr: a, Reason: "no address or port 0"}
	}
	if p != nil {
		for _, s := range p.Self {
			if s.Unmap() == ip {
				return &DestError{Addr: a, Reason: "the proxy's own address"}
			}
		}
		for _, pr := range p.Allow {
			if pr.Contains(ip) {
				return nil
			}
		}
	}
	if ip.Is4() && reserved4.Contains(ip) {
		return &DestError{Addr: a, Reason: "reserved or broadcast"}
	}
	switch c := ipaddr.Classify(ip); c {
	case ipaddr.ClassPublic, ipaddr.ClassDocumentation:
		return nil
	default:
		return &DestError{Addr: a, Reason: c.String()}
	}
}

// DestError is a destination a DestPolicy refused. It matches
// ErrForbiddenDestination with errors.Is.
type DestError struct {
	Addr   netip.AddrPort // the destination refused
	Reason string         // "loopback", "private", "the proxy's own address", ...
}

// Error names the destination and why it was refused.
func (e *DestError) Error() string {
	return "sipmsg: destination " + e.Addr.String() + " refused (" + e.Reason + ")"
}

// Unwrap returns ErrForbiddenDestination.
func (e *DestError) Unwrap() error { return ErrForbiddenDestination }

// CheckURI reads the destination of a received URI or a Request-URI
// (sip:host:port, the host an IP address; the port defaults to the
// transport's) and checks it. A host name is refused: a proxy resolves
// names itself and checks the addresses.
func (p *DestPolicy) CheckURI(b []byte) (netip.AddrPort, error) {
	u, err := ParseURI(b, Span{0, len(b)})
	if err != nil {
		return netip.AddrPort{}, err
	}
	a, ok := u.Addr(b)
	if !u.SIP || !ok {
		return netip.AddrPort{}, perr(u.Host.Start, "destination host", ErrForbiddenDestination)
	}
	port := u.Port
	hostEnd := u.Host.End
	if hostEnd < len(b) && b[hostEnd] == ']' {
		hostEnd++
	}
	if port == 0 && u.HostPort.End > hostEnd { // ":0" written
		return netip.AddrPort{}, &DestError{Addr: netip.AddrPortFrom(a, 0), Reason: "no address or port 0"}
	}
	if port == 0 {
		port = int(uriTransport(b, &u).DefaultPort())
	}
	d := netip.AddrPortFrom(a, uint16(port))
	return d, p.Check(d)
}
