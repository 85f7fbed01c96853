package sdp

import (
	"errors"
	"fmt"
	"github.com/sipnat/sipnat/ipaddr"
	"net/netip"
	"strings"
)

// MaxBodySize bounds the SDP bodies this package reads. Larger input fails with ErrTooLarge.
const MaxBodySize = 1 << 20

// Errors. Syntax errors are *SyntaxError values that wrap ErrMalformed.
var (
	// ErrMalformed: the body is not SDP, or a line this package must
	// interpret (o=, c=, m=, a=rtcp) is broken.
	ErrMalformed = errors.New("sdp: malformed")
	// ErrTooLarge: the input exceeds MaxBodySize.
	ErrTooLarge = errors.New("sdp: body too large")
	// ErrBadOptions: Options has no usable public address or a bad marker.
	ErrBadOptions = errors.New("sdp: bad options")
)

// SyntaxError says which line of a body is malformed and why.
type SyntaxError struct {
	Line   int    // 1-based line number; 0 in the structured path
	Field  string // "v=", "o=", "c=", "m=", "a=rtcp"
	Reason string // what is wrong with it
}

// Error names the line (when known), the field and what is wrong.
func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("sdp: line %d: malformed %s: %s", e.Line, e.Field, e.Reason)
	}
	return fmt.Sprintf("sdp: malformed %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrMalformed.
func (e *SyntaxError) Unwrap() error { return ErrMalformed }

// Options says how to rewrite. Public is required; the zero value of every
// other field is the common choice.
type Options struct {
	// Public is the address that works from outside: the NAT's public
	// address learnt by STUN/UPnP/PCP, or for a proxy the source address
	// of the request. IPv4 or IPv6; c=, o= and a=rtcp get IN IP4 or IN IP6
	// to match it. An IPv4-mapped IPv6 address counts as IPv4.
	Public netip.Addr

	// Ports maps local RTP and RTCP ports to the public ports the NAT
	// gave them, one PortMap each (for a local port listed twice the
	// first counts). It is applied to the m= port and a=rtcp port of every
	// stream whose connection address this rewrite changed (so a second
	// pass over the output changes nothing). When a stream has neither
	// a=rtcp nor a=rtcp-mux and the map sends its RTCP port (RTP+1,
	// RFC 3550) somewhere other than mapped RTP+1, an "a=rtcp:port" line
	// (RFC 3605) is added at the end of the stream's section. A port not
	// in the map is kept. Nil keeps every port. A few entries, as a UA
	// has, are looked up faster in a slice than in a map.
	Ports []PortMap

	// Origin also rewrites the o= address. Some peers key dialogs or
	// media on it; RFC 8866 says it is informational.
	Origin bool

	// All rewrites every unicast address that is not Public, not only
	// private ones: for a proxy that trusts the packet's source over a
	// UA's (possibly wrong) STUN result. 0.0.0.0 / :: (hold), multicast
	// and FQDNs are still left alone.
	All bool

	// AllowICE rewrites bodies that carry ICE (a=candidate, a=ice-ufrag).
	// Without it such a body is copied unchanged and Result.SkippedICE is
	// set: rewriting c= under ICE makes the default candidate disagree with
	// the candidate list (RFC 8445 section 5.1.2 / RFC 8839 section 4.2.1),
	// which ICE agents treat as an ICE mismatch. a=candidate lines are
	// never rewritten.
	AllowICE bool

	// NAT64, when set, is the rewrite an IPv6-only UA behind a NAT64 applies
	// to a peer's SDP (RFC 6052): every IPv4 unicast address in c=,
	// a=rtcp (and o= with Origin) becomes its synthesised IPv6 address
	// under this prefix, with IN IP4 changed to IN IP6, so a media stack
	// that reads the body sends where the NAT64 translates. Public is not
	// needed then, and Ports and All are not used. The prefix must be an
	// RFC 6052 one (ipaddr.SynthesizeNAT64); IPv6, hold and multicast
	// addresses are left alone, so a second pass changes nothing.
	NAT64 netip.Prefix

	// Marker is a session-level attribute line, without line ending, added
	// when the rewrite changed something and the line is not already at
	// session level, e.g. "a=nortpproxy:yes" (Kamailio nathelper's
	// marker). Empty adds nothing. It must start with "a=" and hold no CR
	// or LF.
	Marker string
}

// PortMap is one entry of Options.Ports: the NAT maps local port Local to
// public port Public.
type PortMap struct {
	Local  uint16 // the media socket's local port
	Public uint16 // the port the NAT maps it to
}

// PublicPort returns the public port o.Ports gives local port p, and
// whether p is in o.Ports.
func (o *Options) PublicPort(p uint16) (uint16, bool) { return lookupPort(o.Ports, p) }

// lookupPort is PublicPort on the slice.
func lookupPort(ports []PortMap, p uint16) (uint16, bool) {
	for _, m := range ports {
		if m.Local == p {
			return m.Public, true
		}
	}
	return 0, false
}

// check validates o and returns the public address to write.
func (o *Options) check() (netip.Addr, error) {
	if o == nil {
		return netip.Addr{}, fmt.Errorf("%w: nil Options", ErrBadOptions)
	}
	pub := o.Public.Unmap().WithZone("")
	if o.NAT64.IsValid() || o.NAT64.Bits() > 0 {
		if _, err := ipaddr.SynthesizeNAT64(o.NAT64, netip.AddrFrom4([4]byte{192, 0, 2, 1})); err != nil {
			return netip.Addr{}, fmt.Errorf("%w: %w", ErrBadOptions, err)
		}
		pub = netip.Addr{}
	} else if !pub.IsValid() || pub.IsUnspecified() || pub.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%w: public address %v is not a unicast address", ErrBadOptions, o.Public)
	}
	if m := o.Marker; m != "" {
		if !strings.HasPrefix(m, "a=") || len(m) < 3 || strings.ContainsAny(m, "\r\n") {
			return netip.Addr{}, fmt.Errorf("%w: marker %q is not one a= line", ErrBadOptions, m)
		}
	}
	return pub, nil
}
