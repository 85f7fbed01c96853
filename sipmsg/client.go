package sipmsg

import (
	"net/netip"
)

// PublicAddr returns the address a server saw a request come from, read
// from the received= and rport= parameters of the top Via of response m
// (RFC 3261 §18.2.1, RFC 3581). Without received the sent-by host is used,
// without an rport value the sent-by port; ok is false when the result is
// not an IP address and port.
func (m *Message) PublicAddr() (netip.AddrPort, bool) {
	if m.request || m.buf == nil {
		return netip.AddrPort{}, false
	}
	v, err := m.ParseTopVia()
	if err != nil {
		return netip.AddrPort{}, false
	}
	return v.SourceAddr(m.buf)
}

// Answers reports whether response m answers request req: the same branch
// in the top Via (which must have one) and the same CSeq. A UA learns its
// public address (PublicAddr) only from a response that answers what it
// sent: a third party that did not see the request cannot guess the branch.
// Call-ID and sent-by are not compared, since a SIP ALG may rewrite them
// (DetectALG reports that).
func (m *Message) Answers(req *Message) bool {
	if m.request || m.buf == nil || !req.request || req.buf == nil {
		return false
	}
	sv, err := m.ParseTopVia()
	if err != nil || !sv.HasBranch || sv.Branch.Value.Len() == 0 {
		return false
	}
	qv, err := req.ParseTopVia()
	if err != nil || !qv.HasBranch || string(qv.Branch.Value.In(req.buf)) != string(sv.Branch.Value.In(m.buf)) {
		return false
	}
	sc, ok1 := m.Get(HdrCSeq)
	qc, ok2 := req.Get(HdrCSeq)
	return ok1 && ok2 && string(sc) == string(qc)
}

// ContactTracker keeps the address a UA advertises in Contact and Via
// sent-by, and follows what servers report in responses, as PJSIP's
// allow_contact_rewrite and allow_via_rewrite do: when the public address
// seen by the registrar differs from the advertised one, the UA should
// register again with the new Contact (and remove the old one). The zero
// value is not usable; build it with NewContactTracker. Not safe for
// concurrent use.
//
// The learned address decides where the UA's calls go, so a third party
// must not be able to change it with a forged response (or a forged STUN
// answer, see the nat package). The rule: a change is accepted only from
// the registrar's flow, that is a response that came from the registrar's
// address (over the UA's own socket or connection) and answers the last
// request whose Via AppendVia built (same branch). Off-path attackers see
// neither the branch nor, on TCP and TLS, the connection.
type ContactTracker struct {
	local      netip.AddrPort
	registrar  netip.AddrPort
	advertised netip.AddrPort
	learned    netip.AddrPort
	transport  Transport
	branch     string // branch of the last Via AppendVia built
}

// NewContactTracker starts with the UA's local socket address advertised.
// registrar is where the UA registers: responses from any other address
// are ignored by Observe. An invalid registrar accepts every source, which
// is only safe when the caller filtered sources itself.
func NewContactTracker(local, registrar netip.AddrPort, t Transport) *ContactTracker {
	if t == TransportUnknown {
		t = UDP
	}
	return &ContactTracker{local: local, registrar: unmap(registrar), advertised: local, transport: t}
}

// Update is the result of ContactTracker.Observe.
type Update struct {
	Public     netip.AddrPort // what the server saw (zero when the response said nothing)
	Previous   netip.AddrPort // the advertised address before the update
	Reregister bool           // the advertised address changed: register again
	// Ignored: the response did not come from the registrar's flow (another
	// source, or not an answer to the last Via built by AppendVia); nothing
	// was learned from it.
	Ignored bool
}

// Observe reads the top Via of response m, received from from. When it
// comes from the registrar's flow (see ContactTracker) and the public
// address it reports differs from the advertised address, the tracker
// advertises it from now on and Reregister is set (PJSIP re-registers with
// the new Contact and unregisters the old one).
func (c *ContactTracker) Observe(m *Message, from netip.AddrPort) Update {
	u := Update{Previous: c.advertised}
	if c.registrar.IsValid() && unmap(from) != c.registrar {
		u.Ignored = true
		return u
	}
	if c.branch != "" {
		v, err := m.ParseTopVia()
		if err != nil || !v.HasBranch || string(v.Branch.Value.In(m.buf)) != c.branch {
			u.Ignored = true
			return u
		}
	}
	pub, ok := m.PublicAddr()
	if !ok {
		return u
	}
	u.Public = pub
	c.learned = pub
	if pub != c.advertised {
		c.advertised = pub
		u.Reregister = true
	}
	return u
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// Advertised returns the address the UA should put in Contact and Via
// sent-by.
func (c *ContactTracker) Advertised() netip.AddrPort { return c.advertised }

// Learned returns the last public address a response reported.
func (c *ContactTracker) Learned() netip.AddrPort { return c.learned }

// Local returns the UA's local socket address.
func (c *ContactTracker) Local() netip.AddrPort { return c.local }

// Behind reports whether the last response showed the UA behind NAT
// (a public address different from the local one).
func (c *ContactTracker) Behind() bool { return c.learned.IsValid() && c.learned != c.local }

// AppendContact appends a Contact header value for user at the advertised
// address: "<sip:user@203.0.113.1:5070;transport=tcp>" (transport only
// when not UDP). params, when set, are appended inside the brackets as URI
// parameters (e.g. ";ob").
func (c *ContactTracker) AppendContact(dst []byte, user string, params string) []byte {
	return AppendContactValue(dst, user, c.advertised, c.transport, params)
}

// AppendSentBy appends the Via sent-by the UA should use next: the
// advertised address as host:port (IPv6 in brackets).
func (c *ContactTracker) AppendSentBy(dst []byte) []byte {
	return appendHostPort(dst, c.advertised.Addr(), c.advertised.Port())
}

// AppendVia appends a whole Via value "SIP/2.0/UDP host:port;branch=...;rport"
// and remembers the branch: from now on Observe learns only from responses
// to the last request built this way.
func (c *ContactTracker) AppendVia(dst []byte, branch string) []byte {
	dst = append(dst, "SIP/2.0/"...)
	dst = append(dst, c.transport.String()...)
	dst = append(dst, ' ')
	dst = c.AppendSentBy(dst)
	dst = append(dst, ";branch="...)
	bs := len(dst)
	if !hasPrefixString(branch, BranchMagic) {
		dst = append(dst, BranchMagic...)
	}
	dst = append(dst, branch...)
	if hasPrefixString(branch, BranchMagic) {
		c.branch = branch
	} else {
		c.branch = string(dst[bs:])
	}
	return append(dst, ";rport"...)
}

// AppendContactValue appends "<sip:user@addr;transport=...params>": the
// transport parameter for transports other than UDP, and for TLS a sips:
// URI without it ("<sips:user@addr>", RFC 5630 §3.1.3).
func AppendContactValue(dst []byte, user string, addr netip.AddrPort, t Transport, params string) []byte {
	if t == TLS {
		dst = append(dst, "<sips:"...)
	} else {
		dst = append(dst, "<sip:"...)
	}
	if user != "" {
		dst = append(dst, user...)
		dst = append(dst, '@')
	}
	dst = appendHostPort(dst, addr.Addr(), addr.Port())
	if t != UDP && t != TLS && t != TransportUnknown {
		dst = append(dst, ";transport="...)
		dst = append(dst, t.lowerName()...)
	}
	dst = append(dst, params...)
	return append(dst, '>')
}
