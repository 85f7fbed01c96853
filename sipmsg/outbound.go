package sipmsg

import (
	"net/netip"
	"strconv"
	"time"
)

// RFC 5626 (SIP Outbound) pieces a UA and an edge proxy put in and read
// from messages: the option tag, the Contact parameters, Flow-Timer and the
// 430 response.

// OptionOutbound is the RFC 5626 option tag, in Supported and Require.
const OptionOutbound = "outbound"

// StatusFlowFailed is the response code an edge proxy sends when a request
// targets a flow that no longer exists (RFC 5626 §5.3, "430 Flow Failed").
const StatusFlowFailed = 430

// HasOptionTag reports whether a header of kind k (HdrSupported, HdrRequire)
// of m lists the option tag (case-insensitive), e.g.
// m.HasOptionTag(HdrRequire, OptionOutbound) on a REGISTER's 2xx tells the
// UA that the registrar applied outbound (RFC 5626 §4.2.1).
func (m *Message) HasOptionTag(k HeaderKind, tag string) bool {
	it := m.Values(k)
	for it.Next() {
		if equalFold(it.Bytes(), tag) {
			return true
		}
	}
	return false
}

// FlowTimer returns the value of the Flow-Timer header of m (RFC 5626 §4.4:
// the seconds the edge proxy wants between keep-alives), and false when
// there is none or it is not a whole number of seconds from 1 to 86400.
func (m *Message) FlowTimer() (time.Duration, bool) {
	v, ok := m.Get(HdrFlowTimer)
	if !ok {
		return 0, false
	}
	n, ok := parseUint(v, 86400)
	if !ok || n == 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// Outbound is what a UA adds to the Contact of a REGISTER to ask for an
// RFC 5626 flow: its instance ID and the flow's reg-id.
type Outbound struct {
	Instance string // a stable URN, e.g. "urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF"
	RegID    int    // 1, 2, ... one per flow; 0 omits reg-id (instance only)
}

// AppendOutboundContact appends a REGISTER Contact value for an outbound
// flow: "<sip:user@addr;transport=tcp;ob>;+sip.instance="<urn>";reg-id=1"
// (RFC 5626 §4.2). With TLS the URI is a sips: URI (RFC 5630), without a
// transport parameter.
func AppendOutboundContact(dst []byte, user string, addr netip.AddrPort, t Transport, o Outbound) []byte {
	dst = AppendContactValue(dst, user, addr, t, ";ob")
	if o.Instance != "" {
		dst = append(dst, `;+sip.instance="<`...)
		dst = append(dst, o.Instance...)
		dst = append(dst, `>"`...)
	}
	if o.RegID > 0 {
		dst = append(dst, ";reg-id="...)
		dst = strconv.AppendUint(dst, uint64(o.RegID), 10)
	}
	return dst
}

// RegisterRequest describes a REGISTER (RFC 3261 §10.2), with the RFC 5626
// outbound parameters when Outbound.Instance is set.
type RegisterRequest struct {
	Registrar string         // Request-URI, e.g. "sip:example.com"
	AoR       string         // From and To URI, e.g. "sip:alice@example.com"
	User      string         // Contact user part
	Contact   netip.AddrPort // Contact and Via sent-by address
	Transport Transport      // Via transport and Contact transport (UDP when unknown)
	Branch    string         // Via branch; "z9hG4bK" is prefixed when missing
	Tag       string         // From tag
	CallID    string         // Call-ID, the same for every refresh of one registration
	CSeq      uint32         // CSeq number, one more for each REGISTER of the Call-ID
	Expires   time.Duration  // whole seconds; 0 unregisters
	Outbound  Outbound       // ;ob, +sip.instance and reg-id; Supported: path, outbound
	// Alias adds the RFC 5923 ";alias" Via parameter: the server may send
	// requests for the UA back over this TCP/TLS connection.
	Alias bool
	// Extra holds more header lines, each ending with CRLF
	// (an Authorization answering a challenge, say).
	Extra     string
	UserAgent string // User-Agent value; the header is left out when empty
}

// AppendRegister appends the REGISTER r to dst. With r.Outbound.Instance
// set it carries "Supported: path, outbound" and an AppendOutboundContact
// Contact (RFC 5626 §4.2.1).
func AppendRegister(dst []byte, r RegisterRequest) []byte {
	t := r.Transport
	if t == TransportUnknown {
		t = UDP
	}
	dst = append(dst, "REGISTER "...)
	dst = append(dst, r.Registrar...)
	dst = append(dst, " SIP/2.0\r\nVia: SIP/2.0/"...)
	dst = append(dst, t.String()...)
	dst = append(dst, ' ')
	dst = appendHostPort(dst, r.Contact.Addr(), r.Contact.Port())
	dst = append(dst, ";branch="...)
	if !hasPrefixString(r.Branch, BranchMagic) {
		dst = append(dst, BranchMagic...)
	}
	dst = append(dst, r.Branch...)
	dst = append(dst, ";rport"...)
	if r.Alias {
		dst = append(dst, ";alias"...)
	}
	dst = append(dst, "\r\nMax-Forwards: 70\r\nFrom: <"...)
	dst = append(dst, r.AoR...)
	dst = append(dst, ">;tag="...)
	dst = append(dst, r.Tag...)
	dst = append(dst, "\r\nTo: <"...)
	dst = append(dst, r.AoR...)
	dst = append(dst, ">\r\nCall-ID: "...)
	dst = append(dst, r.CallID...)
	dst = append(dst, "\r\nCSeq: "...)
	dst = strconv.AppendUint(dst, uint64(r.CSeq), 10)
	dst = append(dst, " REGISTER\r\nContact: "...)
	if r.Outbound.Instance != "" {
		dst = AppendOutboundContact(dst, r.User, r.Contact, t, r.Outbound)
		dst = append(dst, "\r\nSupported: path, outbound"...)
	} else {
		dst = AppendContactValue(dst, r.User, r.Contact, t, "")
	}
	dst = append(dst, "\r\nExpires: "...)
	dst = strconv.AppendInt(dst, int64(r.Expires/time.Second), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, r.Extra...)
	if r.UserAgent != "" {
		dst = append(dst, "User-Agent: "...)
		dst = append(dst, r.UserAgent...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "Content-Length: 0\r\n\r\n"...)
}

// AppendResponse appends a response with code and reason to request req,
// as a stateless server sends it (RFC 3261 §8.2.6): its Via headers, From,
// To (with toTag added when To has no tag and toTag is set), Call-ID and
// CSeq copied, then extra header lines (each ending with CRLF) and an
// empty body. An edge proxy answers a request for a vanished flow with
// AppendResponse(dst, req, StatusFlowFailed, "Flow Failed", "", "").
func AppendResponse(dst []byte, req *Message, code int, reason, toTag, extra string) ([]byte, error) {
	if !req.request || code < 100 || code > 699 {
		return dst, ErrNotRequest
	}
	dst = append(dst, "SIP/2.0 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, reason...)
	dst = append(dst, "\r\n"...)
	for _, k := range [...]HeaderKind{HdrVia, HdrFrom, HdrTo, HdrCallID, HdrCSeq} {
		for i := 0; i < req.nhdr; i++ {
			if !req.isKind(i, k) {
				continue
			}
			dst = append(dst, headerNames[k].name...)
			dst = append(dst, ": "...)
			dst = append(dst, req.HeaderValue(i)...)
			if k == HdrTo && toTag != "" && !hasTag(req, i) {
				dst = append(dst, ";tag="...)
				dst = append(dst, toTag...)
			}
			dst = append(dst, "\r\n"...)
		}
	}
	dst = append(dst, extra...)
	return append(dst, "Content-Length: 0\r\n\r\n"...), nil
}

// hasTag reports whether header i (a To or From) has a tag parameter.
func hasTag(m *Message, i int) bool {
	_, ok := m.headerTag(i)
	return ok
}

// Tag returns the tag parameter of the first header of kind k (HdrFrom or
// HdrTo; RFC 3261 §19.3), and false when it has none. A request without a
// To tag is outside a dialog: an INVITE or SUBSCRIBE without one creates a
// dialog (§12.1).
func (m *Message) Tag(k HeaderKind) ([]byte, bool) {
	i := m.Index(k)
	if i < 0 {
		return nil, false
	}
	return m.headerTag(i)
}

// headerTag returns the tag parameter of header i.
func (m *Message) headerTag(i int) ([]byte, bool) {
	na, err := ParseNameAddr(m.buf, m.hdrs[i].value)
	if err != nil {
		return nil, false
	}
	p, ok := na.Param(m.buf, "tag")
	if !ok {
		return nil, false
	}
	return p.Value.In(m.buf), true
}
