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
// took part in the request: "rtpengine=offer-<signature>" (the request's
// SDP was offered: the response is answered at this hop, and only here),
// "rtpengine=late-<signature>" (a late offer: the request had no SDP, so
// the response's SDP is the offer) or "rtpengine=answer-<signature>" (an
// ACK's SDP answered a late offer); "rtpengine=end-<signature>" marks a
// BYE or CANCEL whose 2xx is to delete the call's session (Action
// Confirm) and "rtpengine=ended-<signature>" one the edge deleted the
// session for (Action Deleted): an edge further on (the request may pass
// it again on its way to the other party) leaves it alone;
// "rtpengine=leg-<signature>" marks an INVITE or UPDATE an edge on the way
// relayed (Action Leg): the edge knows the sender of the response as a
// party of the call. An offer or late offer inside a dialog
// (a re-INVITE or UPDATE: the request has a To tag) is written "reoffer"
// or "relate": a failure answer to it leaves the established call's media
// alone. No edge further on acts on a request
// that carries one (a call can pass one edge twice, caller, registrar,
// callee, or two edges that share the relays). The signature is what lets
// the edge trust the mark when a response brings it back: see
// Relay.AppendViaMark.
const ViaParam = "rtpengine"

// The mark kinds, as ViaParam's value starts; the "re" kinds are those of
// a request inside a dialog.
const (
	markOffer   = "offer"
	markLate    = "late"
	markAnswer  = "answer"
	markReoffer = "reoffer"
	markRelate  = "relate"
	markEnd     = "end"   // a BYE or CANCEL the edge did not trust at once: a 2xx deletes
	markEnded   = "ended" // a BYE or CANCEL the edge deleted the call's session for
	markLeg     = "leg"   // an INVITE or UPDATE an edge on the way relayed: its answerer is a party
)

// markKinds are the kinds markIn knows.
var markKinds = [...]string{markOffer, markLate, markAnswer, markReoffer, markRelate, markEnd, markEnded, markLeg}

// kindBytes are written into the HMAC without converting (a conversion
// would allocate).
var (
	kindBytes = func() map[string][]byte {
		m := make(map[string][]byte, len(markKinds))
		for _, k := range markKinds {
			m[k] = []byte(k)
		}
		return m
	}()
)

// markKind is the mark for act on a request; inDialog says the request
// has a To tag (a re-INVITE or an UPDATE, not the dialog-creating INVITE).
func markKind(act Action, inDialog bool) string {
	switch {
	case act == Offered && inDialog:
		return markReoffer
	case act == Offered:
		return markOffer
	case act == Late && inDialog:
		return markRelate
	case act == Late:
		return markLate
	case act == Answered:
		return markAnswer
	case act == Confirm:
		return markEnd
	case act == Deleted:
		return markEnded
	case act == Leg:
		return markLeg
	}
	return ""
}

// offers reports whether kind marks a request whose SDP was offered (the
// response's SDP is the answer).
func offers(kind string) bool { return kind == markOffer || kind == markReoffer }

// creates reports whether kind marks the dialog-creating INVITE, whose
// failure ends the call's media.
func creates(kind string) bool { return kind == markOffer || kind == markLate }

// AppendViaMark appends to via, the edge's own Via value for the request m
// it is about to forward (with the branch the edge made for it), the mark
// for act (Offered, Late, Answered, Confirm, Deleted or Leg, as ViaParam says;
// "reoffer" and "relate" for a request with a To tag): ";rtpengine=offer-" and a signature,
// 16 hex digits of an HMAC-SHA256 under Config.Key over the mark, the
// branch, and m's Call-ID, From tag and CSeq number. A response is taken
// as the answer (or, for a late offer, the offer) of a call only when its
// top Via carries a mark with a good signature: the edge acts only on
// answers to transactions it forwarded itself, and a forged response that
// copies the mark for another call, or makes one up, is refused
// (ErrForged, counted in Stats.Forged). Other actions, or a via without a
// branch, append nothing. It does not allocate beyond growing via.
func (r *Relay) AppendViaMark(via []byte, m *sipmsg.Message, act Action) []byte {
	toTag, _ := m.Tag(sipmsg.HdrTo)
	kind := markKind(act, len(toTag) > 0)
	if kind == "" {
		return via
	}
	v, err := sipmsg.ParseVia(via, sipmsg.Span{Start: 0, End: len(via)})
	if err != nil || !v.HasBranch {
		return via
	}
	via = append(via, ";"+ViaParam+"="...)
	via = append(via, kind...)
	via = append(via, '-')
	return r.signer.AppendSig(via, v.Branch.Value.In(via), m, kindBytes[kind])
}

// mark is a Via mark as a message carries it.
type mark struct {
	kind   string // markOffer, markLate, markAnswer, or "" for none
	sig    []byte // the hex signature, as written
	branch []byte // the branch of the Via that carries it
}

// verify reports whether mk's signature is the edge's own for m.
func (r *Relay) verify(mk mark, m *sipmsg.Message) bool {
	return r.signer.VerifySig(mk.sig, mk.branch, m, kindBytes[mk.kind])
}

// topMark returns the mark of m's top Via when that Via names self (a
// response at the hop that marked it); ok is false when it names another
// host or does not parse.
func topMark(m *sipmsg.Message, self netip.AddrPort) (mk mark, ok bool) {
	b := m.Bytes()
	it := m.Values(sipmsg.HdrVia)
	if !it.Next() {
		return mark{}, false
	}
	v, err := sipmsg.ParseVia(b, it.Span())
	if err != nil {
		return mark{}, false
	}
	if a, ok := v.HostAddr(b); !ok || a != self.Addr() || v.PortOrDefault(b) != int(self.Port()) {
		return mark{}, false
	}
	mk = markIn(v.Params.In(b))
	if v.HasBranch {
		mk.branch = v.Branch.Value.In(b)
	}
	return mk, true
}

// anyMark reports whether any Via of m carries a mark: an edge on the way
// acted already.
func anyMark(m *sipmsg.Message) bool {
	b := m.Bytes()
	for it := m.Values(sipmsg.HdrVia); it.Next(); {
		v, err := sipmsg.ParseVia(b, it.Span())
		if err != nil {
			return false
		}
		if markIn(v.Params.In(b)).kind != "" {
			return true
		}
	}
	return false
}

// markIn reads ";rtpengine=kind-signature" in Via parameters (the
// signature may be missing: then the mark cannot be verified).
func markIn(params []byte) mark {
	for len(params) > 0 {
		if params[0] != ';' {
			return mark{}
		}
		params = params[1:]
		end := bytes.IndexByte(params, ';')
		if end < 0 {
			end = len(params)
		}
		p := bytes.TrimSpace(params[:end])
		params = params[end:]
		eq := bytes.IndexByte(p, '=')
		if eq < 0 || !bytes.EqualFold(bytes.TrimSpace(p[:eq]), []byte(ViaParam)) {
			continue
		}
		val := bytes.TrimSpace(p[eq+1:])
		kind, sig, _ := bytes.Cut(val, []byte{'-'})
		for _, k := range markKinds {
			if string(kind) == k {
				return mark{kind: k, sig: sig}
			}
		}
		return mark{}
	}
	return mark{}
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
