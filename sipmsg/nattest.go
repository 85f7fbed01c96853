package sipmsg

import (
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// NATTest is a set of NAT heuristics, one bit each. The values are those of
// Kamailio's nathelper nat_uac_test() flags, so a configuration's "19" means
// the same here: NATTest(19) == ContactPrivate|ViaAddrDiffers|ViaPortDiffers.
type NATTest uint16

// The NAT tests. "Private" means ipaddr.IsPrivate: RFC 1918, RFC 6598, IPv6 ULA,
// loopback and link-local.
const (
	// ContactPrivate (1): a Contact URI host is a private address.
	ContactPrivate NATTest = 1
	// ViaAddrDiffers (2): the top Via sent-by address differs from the
	// source address (a host name counts as different).
	ViaAddrDiffers NATTest = 2
	// ViaPrivate (4): the top Via sent-by host is a private address.
	ViaPrivate NATTest = 4
	// SDPPrivate (8): the SDP body holds a private address.
	SDPPrivate NATTest = 8
	// ViaPortDiffers (16): the top Via port (default 5060, 5061 for TLS)
	// differs from the source port.
	ViaPortDiffers NATTest = 16
	// SourcePrivate (32): the source address itself is private.
	SourcePrivate NATTest = 32
	// ContactDiffers (128): a Contact URI's address:port (default port by
	// transport) differs from the source address:port. Kamailio's bit 128
	// compares the port only; this test compares both.
	ContactDiffers NATTest = 128
	// SDPDiffers (256): an SDP connection address differs from the source
	// address.
	SDPDiffers NATTest = 256

	// AllNATTests is every test above.
	AllNATTests = ContactPrivate | ViaAddrDiffers | ViaPrivate | SDPPrivate |
		ViaPortDiffers | SourcePrivate | ContactDiffers | SDPDiffers
)

var natTestNames = [...]struct {
	t    NATTest
	name string
}{
	{ContactPrivate, "contact-private"},
	{ViaAddrDiffers, "via-addr-differs"},
	{ViaPrivate, "via-private"},
	{SDPPrivate, "sdp-private"},
	{ViaPortDiffers, "via-port-differs"},
	{SourcePrivate, "source-private"},
	{ContactDiffers, "contact-differs"},
	{SDPDiffers, "sdp-differs"},
}

// String lists the tests in t separated by '|' ("none" when empty).
func (t NATTest) String() string {
	if t == 0 {
		return "none"
	}
	var b []byte
	for _, n := range natTestNames {
		if t&n.t != 0 {
			if len(b) > 0 {
				b = append(b, '|')
			}
			b = append(b, n.name...)
		}
	}
	return string(b)
}

// SDPCheck inspects an SDP body for the SDP NAT tests: private reports
// whether any connection or origin address in it is private (ipaddr.IsPrivate),
// differs whether any connection (c=) address differs from src.
// SDPNATCheck is the one backed by sdp.CheckFrom; a nil SDPCheck makes the
// SDP tests never fire.
type SDPCheck func(body []byte, src netip.Addr) (private, differs bool)

// NATTest runs the tests in tests on message m received from src and
// returns those that fired (the message is behind NAT if any did). sdp
// serves the SDP tests; nil skips them. Malformed Via or Contact values make
// their tests not fire and are reported as an error together with the
// tests that did fire.
func (m *Message) NATTest(src netip.AddrPort, tests NATTest, sdp SDPCheck) (NATTest, error) {
	var fired NATTest
	var firstErr error
	var pc privCache
	b := m.buf
	srcIP := src.Addr().Unmap()
	if tests&SourcePrivate != 0 && ipaddr.IsPrivate(srcIP) {
		fired |= SourcePrivate
	}
	if tests&(ViaAddrDiffers|ViaPrivate|ViaPortDiffers) != 0 {
		v, err := m.topVia()
		if err != nil {
			firstErr = err
		} else {
			a, isIP := v.HostAddr(b)
			if tests&ViaAddrDiffers != 0 && (!isIP || a.Unmap() != srcIP) {
				fired |= ViaAddrDiffers
			}
			if tests&ViaPrivate != 0 && isIP && pc.private(a) {
				fired |= ViaPrivate
			}
			if tests&ViaPortDiffers != 0 && v.PortOrDefault(b) != int(src.Port()) {
				fired |= ViaPortDiffers
			}
		}
	}
	if tests&(ContactPrivate|ContactDiffers) != 0 {
		it := m.contactIter()
		for it.next() {
			u, err := it.u, it.err
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			if !u.SIP {
				continue
			}
			a, isIP := u.Addr(b)
			if tests&ContactPrivate != 0 && isIP && pc.private(a) {
				fired |= ContactPrivate
			}
			if tests&ContactDiffers != 0 {
				port := u.Port
				if port == 0 {
					port = int(uriTransport(b, u).DefaultPort())
				}
				if !isIP || a.Unmap() != srcIP || port != int(src.Port()) {
					fired |= ContactDiffers
				}
			}
		}
	}
	if tests&(SDPPrivate|SDPDiffers) != 0 && sdp != nil && m.body.Len() > 0 {
		fired |= m.sdpTests(srcIP, tests, sdp)
	}
	return fired, firstErr
}

// sdpTests runs the SDP tests of NATTest, apart so that a signalling-only
// NATTest stays small in the instruction cache.
//
//go:noinline
func (m *Message) sdpTests(srcIP netip.Addr, tests NATTest, sdp SDPCheck) NATTest {
	var fired NATTest
	if !m.hasSDP() {
		return 0
	}
	priv, diff := sdp(m.Body(), srcIP)
	if priv && tests&SDPPrivate != 0 {
		fired |= SDPPrivate
	}
	if diff && tests&SDPDiffers != 0 {
		fired |= SDPDiffers
	}
	return fired
}

// HasSDP reports whether m carries an SDP body: a non-empty body with
// Content-Type application/sdp, or with no Content-Type and starting "v=".
func (m *Message) HasSDP() bool {
	return m.body.Len() > 0 && m.hasSDP()
}

// hasSDP is HasSDP for a message known to have a body.
func (m *Message) hasSDP() bool {
	ct, ok := m.Get(HdrContentType)
	if !ok {
		body := m.Body()
		return len(body) >= 2 && body[0] == 'v' && body[1] == '='
	}
	const sdpType = "application/sdp"
	if !hasPrefixFold(ct, sdpType) {
		return false
	}
	// "application/sdpx" is another type; parameters or blanks may follow.
	return len(ct) == len(sdpType) || ct[len(sdpType)] == ';' || ct[len(sdpType)] == ' ' || ct[len(sdpType)] == '\t'
}

// contactURI parses a Contact value and its URI. A "*" Contact yields a
// non-SIP URI.
func contactURI(b []byte, s Span) (URI, error) {
	na, err := ParseNameAddr(b, s)
	if err != nil {
		return URI{}, err
	}
	if na.Star {
		return URI{}, nil
	}
	return ParseURI(b, na.URI)
}

// uriTransport returns the transport= parameter of u, or UDP (TLS for sips).
func uriTransport(b []byte, u *URI) Transport {
	if p, ok := u.Param(b, "transport"); ok {
		if t := ParseTransport(p.Value.In(b)); t != TransportUnknown {
			return t
		}
	}
	if equalFold(u.Scheme.In(b), "sips") {
		return TLS
	}
	return UDP
}

// privCache remembers the last address classified: a UA's Via and Contact
// usually carry the same one.
type privCache struct {
	a    netip.Addr
	priv bool
}

func (c *privCache) private(a netip.Addr) bool {
	if a != c.a || !a.IsValid() {
		c.a, c.priv = a, ipaddr.IsPrivate(a)
	}
	return c.priv
}
