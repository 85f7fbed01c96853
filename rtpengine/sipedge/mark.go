package sipedge

import (
	"bytes"
	"net/netip"

	"github.com/sipnat/sipnat/sipmsg"
)

// MarkParam is the URI parameter ("nat=yes") that marks the edge's
// Record-Route value when a party of the dialog is behind NAT.
const MarkParam = "nat"

// AppendRecordRoute appends the edge's Record-Route value for self:
// "<sip:self;lr>", with ";nat=yes" when a party of the dialog is behind NAT.
func AppendRecordRoute(dst []byte, self netip.AddrPort, nat bool) []byte {
	params := ";lr"
	if nat {
		params = ";lr;" + MarkParam + "=yes"
	}
	return sipmsg.AppendContactValue(dst, "", self, sipmsg.UDP, params)
}

// ViaParam is the parameter ("rtpengine=offer") the edge adds to its own
// Via when it offered the request's SDP to the relay, so that it answers
// on the response that comes back through the same hop, and only there,
// and so that no other edge on the way offers again (a call can pass one
// edge twice, caller, registrar, callee, or two edges sharing the relays).
const ViaParam = "rtpengine"

// AppendViaMark appends ";rtpengine=offer" to the edge's Via value when act
// is Offered, and nothing otherwise.
func AppendViaMark(dst []byte, act Action) []byte {
	if act != Offered {
		return dst
	}
	return append(dst, ";"+ViaParam+"=offer"...)
}

// offeredHere reports, for a response (top), whether its top Via names
// self with the offer mark: this hop offered, this hop answers; for a
// request, whether any Via carries the mark: an edge on the way (this one,
// or another sharing the relays) offered it already.
func offeredHere(m *sipmsg.Message, self netip.AddrPort, top bool) bool {
	b := m.Bytes()
	for it := m.Values(sipmsg.HdrVia); it.Next(); {
		v, err := sipmsg.ParseVia(b, it.Span())
		if err != nil {
			return false
		}
		marked := bytes.Contains(v.Params.In(b), []byte(";"+ViaParam+"=offer"))
		if !top && marked {
			return true
		}
		if top {
			a, ok := v.HostAddr(b)
			return marked && ok && a == self.Addr() && v.PortOrDefault(b) == int(self.Port())
		}
	}
	return false
}

// Marked reports whether a request says a party of its dialog is behind
// NAT: its Request-URI carries an alias (a NATed contact registered through
// the edge), or a Route value naming self carries ";nat=yes" (a request
// inside a dialog the edge marked with AppendRecordRoute).
func Marked(m *sipmsg.Message, self netip.AddrPort) bool {
	if !m.IsRequest() {
		return false
	}
	b := m.Bytes()
	if u, err := sipmsg.ParseURI(b, m.RequestURISpan()); err == nil {
		if _, ok := u.Param(b, "alias"); ok {
			return true
		}
	}
	for it := m.Values(sipmsg.HdrRoute); it.Next(); {
		na, err := sipmsg.ParseNameAddr(b, it.Span())
		if err != nil {
			continue
		}
		u, err := sipmsg.ParseURI(b, na.URI)
		if err != nil {
			continue
		}
		a, ok := u.Addr(b)
		port := u.Port
		if port == 0 {
			port = 5060
		}
		if !ok || a != self.Addr() || port != int(self.Port()) {
			continue
		}
		if p, ok := u.Param(b, MarkParam); ok && string(p.Value.In(b)) == "yes" {
			return true
		}
	}
	return false
}
