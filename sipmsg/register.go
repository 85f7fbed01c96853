package sipmsg

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// AppendReceivedURI appends the URI a registrar stores as the received
// address of a contact registered from src over t: "sip:203.0.113.1:5070",
// with ";transport=tcp" for transports other than UDP (Kamailio
// fix_nated_register, the registrar's received_avp / ;received= contact
// parameter).
func AppendReceivedURI(dst []byte, src netip.AddrPort, t Transport) []byte {
	dst = append(dst, "sip:"...)
	dst = appendHostPort(dst, src.Addr(), src.Port())
	if t != UDP && t != TransportUnknown {
		dst = append(dst, ";transport="...)
		dst = append(dst, t.lowerName()...)
	}
	return dst
}

// Registration is what a registrar learns from a REGISTER received from a
// UA behind NAT (fix_nated_register semantics).
type Registration struct {
	Source    netip.AddrPort // where the REGISTER came from: where to send requests for the AoR
	Transport Transport      // the transport it came over
	NATed     bool           // the NAT tests fired
	Tests     NATTest        // which tests fired
}

// RegistrationFor runs the NAT tests (nat_uac_test "19": Contact private,
// Via address and port) on a REGISTER received from src over t and returns
// what the registrar should keep for it. When NATed is true, store the
// source (AppendReceivedURI) next to the contact and route requests for the
// AoR to it, after DestPolicy.CheckURI (a source can be spoofed on UDP).
func RegistrationFor(m *Message, src netip.AddrPort, t Transport) (Registration, error) {
	if !m.IsMethod("REGISTER") {
		return Registration{}, ErrNotRequest
	}
	if !src.IsValid() || src.Port() == 0 {
		return Registration{}, ErrBadAddress // a received URI must never say port 0
	}
	if t == TransportUnknown {
		t = UDP
	}
	tests, err := m.NATTest(src, ContactPrivate|ViaAddrDiffers|ViaPortDiffers, nil)
	return Registration{Source: src, Transport: t, NATed: tests != 0, Tests: tests}, err
}

// Flow is a connection (RFC 5626 "flow") between an edge proxy and a UA:
// the UA's address as the proxy sees it, the proxy's local address and the
// transport.
type Flow struct {
	Remote    netip.AddrPort // the UA's address as the proxy sees it (after NAT)
	Local     netip.AddrPort // the proxy's own address of the flow
	Transport Transport      // the flow's transport
}

const flowMACLen = 10

// AppendFlowToken appends an RFC 5626 §5.2 flow token for f to dst: the
// flow, packed, with a truncated HMAC-SHA256 under key, base64url encoded
// (so it is a valid SIP URI user part). ParseFlowToken reverses it and
// rejects tokens not made with key.
func AppendFlowToken(dst []byte, key []byte, f Flow) []byte {
	var raw [flowMACLen + 1 + 2*19]byte // transport, then per address: family, 4 or 16 octets, port
	p := packFlow(raw[flowMACLen:flowMACLen], f)
	mac := hmac.New(sha256.New, key)
	mac.Write(p)
	var sum [sha256.Size]byte
	copy(raw[:flowMACLen], mac.Sum(sum[:0]))
	n := flowMACLen + len(p)
	out := base64.RawURLEncoding.EncodedLen(n)
	start := len(dst)
	for i := 0; i < out; i++ {
		dst = append(dst, 0)
	}
	base64.RawURLEncoding.Encode(dst[start:], raw[:n])
	return dst
}

// ParseFlowToken checks and decodes a token made by AppendFlowToken.
func ParseFlowToken(key, token []byte) (Flow, error) {
	var raw [64]byte
	if base64.RawURLEncoding.DecodedLen(len(token)) > len(raw) {
		return Flow{}, perr(0, "flow token", ErrMalformed)
	}
	n, err := base64.RawURLEncoding.Decode(raw[:], token)
	if err != nil || n < flowMACLen+1 {
		return Flow{}, perr(0, "flow token", ErrMalformed)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(raw[flowMACLen:n])
	var sum [sha256.Size]byte
	if !hmac.Equal(mac.Sum(sum[:0])[:flowMACLen], raw[:flowMACLen]) {
		return Flow{}, perr(0, "flow token", ErrMalformed)
	}
	f, ok := unpackFlow(raw[flowMACLen:n])
	if !ok {
		return Flow{}, perr(0, "flow token", ErrMalformed)
	}
	return f, nil
}

func packFlow(dst []byte, f Flow) []byte {
	dst = append(dst, byte(f.Transport))
	for _, ap := range [2]netip.AddrPort{f.Remote, f.Local} {
		a := ap.Addr().Unmap()
		if a.Is4() {
			v := a.As4()
			dst = append(dst, 4)
			dst = append(dst, v[:]...)
		} else {
			v := a.As16()
			dst = append(dst, 6)
			dst = append(dst, v[:]...)
		}
		dst = binary.BigEndian.AppendUint16(dst, ap.Port())
	}
	return dst
}

func unpackFlow(b []byte) (Flow, bool) {
	var f Flow
	if len(b) < 1 {
		return f, false
	}
	f.Transport = Transport(b[0])
	b = b[1:]
	var aps [2]netip.AddrPort
	for i := range aps {
		if len(b) < 1 {
			return f, false
		}
		var a netip.Addr
		switch b[0] {
		case 4:
			if len(b) < 7 {
				return f, false
			}
			a = netip.AddrFrom4([4]byte(b[1:5]))
			b = b[5:]
		case 6:
			if len(b) < 19 {
				return f, false
			}
			a = netip.AddrFrom16([16]byte(b[1:17]))
			b = b[17:]
		default:
			return f, false
		}
		aps[i] = netip.AddrPortFrom(a, binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) != 0 {
		return f, false
	}
	f.Remote, f.Local = aps[0], aps[1]
	return f, true
}

// AppendPathValue appends a Path header value for an edge proxy at proxy
// (RFC 3327; RFC 5626 §5.1): "<sip:TOKEN@proxy;lr;ob>" with the flow token
// as user part, or "<sip:proxy;lr>" when token is empty. Pass it as
// Fix.Path.
func AppendPathValue(dst []byte, proxy netip.AddrPort, token []byte, outbound bool) []byte {
	dst = append(dst, "<sip:"...)
	if len(token) > 0 {
		dst = append(dst, token...)
		dst = append(dst, '@')
	}
	dst = appendHostPort(dst, proxy.Addr(), proxy.Port())
	dst = append(dst, ";lr"...)
	if outbound {
		dst = append(dst, ";ob"...)
	}
	return append(dst, '>')
}

// Alias is the destination carried by an ;alias=ip~port~proto URI parameter.
type Alias struct {
	Addr      netip.AddrPort // where to send: the UA's public address and port
	Transport Transport      // over which transport
}

// ParseAlias parses an alias parameter value "ip~port~proto" (IPv6 in
// brackets or not).
func ParseAlias(v []byte) (Alias, error) {
	t1 := -1
	t2 := -1
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == '~' {
			if t2 < 0 {
				t2 = i
			} else {
				t1 = i
				break
			}
		}
	}
	if t1 <= 0 || t2 < 0 {
		return Alias{}, perr(0, "alias", ErrMalformed)
	}
	a, ok := ipaddr.ParseHost(v[:t1])
	port, okp := parseUint(v[t1+1:t2], 65535)
	proto, okt := parseUint(v[t2+1:], 6)
	if !ok || !okp || !okt || port == 0 || proto == 0 {
		return Alias{}, perr(0, "alias", ErrMalformed)
	}
	return Alias{Addr: netip.AddrPortFrom(a, uint16(port)), Transport: Transport(proto)}, nil
}

// HandleRURIAlias is Kamailio's handle_ruri_alias: when the Request-URI of
// request m carries an ;alias parameter (the first one), it appends m
// without that parameter to dst and returns the destination it named, where
// the request must be sent. found is false (and dst unchanged) when there
// is no alias. Anyone can write an alias into a Request-URI, so the
// destination must pass p (nil: the zero DestPolicy, public addresses
// only); when it does not, err matches ErrForbiddenDestination, a is the
// refused destination and nothing is appended.
func HandleRURIAlias(dst []byte, m *Message, p *DestPolicy) (out []byte, a Alias, found bool, err error) {
	if a, found, err = m.RURIAlias(p); err != nil || !found {
		return dst, a, false, err
	}
	out, err = AppendFix(dst, m, netip.AddrPort{}, &Fix{RemoveRURIAlias: true})
	return out, a, err == nil, err
}
