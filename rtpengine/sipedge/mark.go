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

// ViaParam is the parameter the edge adds to its own Via when the relay
// took part in the request: "rtpengine=offer" (the request's SDP was
// offered: the response is answered at this hop, and only here),
// "rtpengine=late" (a late offer: the request had no SDP, so the response's
// SDP is the offer) or "rtpengine=answer" (an ACK's SDP answered a late
// offer). No edge further on acts on a request that carries one (a call
// can pass one edge twice, caller, registrar, callee, or two edges that
// share the relays).
const ViaParam = "rtpengine"

// AppendViaMark appends the edge's Via mark for act (Offered, Late or
// Answered) and nothing for other actions.
func AppendViaMark(dst []byte, act Action) []byte {
	switch act {
	case Offered:
		return append(dst, ";"+ViaParam+"=offer"...)
	case Late:
		return append(dst, ";"+ViaParam+"=late"...)
	case Answered:
		return append(dst, ";"+ViaParam+"=answer"...)
	}
	return dst
}

// viaMark returns the mark of m's top Via if that Via names self (a
// response at the hop that marked it), or, with any set, whether any Via
// of a request carries a mark ("any": an edge on the way acted already).
func viaMark(m *sipmsg.Message, self netip.AddrPort, any bool) string {
	b := m.Bytes()
	for it := m.Values(sipmsg.HdrVia); it.Next(); {
		v, err := sipmsg.ParseVia(b, it.Span())
		if err != nil {
			return ""
		}
		mark := markIn(v.Params.In(b))
		if any {
			if mark != "" {
				return mark
			}
			continue
		}
		if a, ok := v.HostAddr(b); !ok || a != self.Addr() || v.PortOrDefault(b) != int(self.Port()) {
			return ""
		}
		return mark
	}
	return ""
}

// markIn returns the value of ";rtpengine=" in Via parameters, or "".
func markIn(params []byte) string {
	for _, v := range [...]string{"offer", "late", "answer"} {
		if bytes.Contains(params, []byte(";"+ViaParam+"="+v)) {
			return v
		}
	}
	return ""
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
