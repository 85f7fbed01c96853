package sipmsg

import (
	"fmt"
	"net/netip"
)

// AppendRemoveTopValue appends m without the first value of the headers of
// kind k (a proxy removes its own Via from a response, RFC 3261 §18.1.2,
// or its own Route from a loose-routed request, §16.12). The whole header
// line goes when it held only that value. removed is false (and m copied
// unchanged) when there is no such header.
func AppendRemoveTopValue(dst []byte, m *Message, k HeaderKind) (out []byte, removed bool, err error) {
	if m.buf == nil {
		return dst, false, perr(0, "rewrite", ErrMalformed)
	}
	e := &m.ed
	e.reset(m.buf)
	removed = m.removeTopValue(e, k)
	out, err = e.apply(dst, m.body, nil, Span{-1, -1})
	return out, removed, err
}

// AppendInsertTop appends m with "Name: value" inserted before the first
// header of kind k (after the last Via when there is none), unless the
// first value of kind k already equals value. A stateless proxy adds its
// Via this way (k = HdrVia, value "SIP/2.0/UDP host:port;branch=...").
func AppendInsertTop(dst []byte, m *Message, k HeaderKind, value []byte) ([]byte, error) {
	if m.buf == nil || k == HdrOther {
		return dst, perr(0, "rewrite", ErrMalformed)
	}
	e := &m.ed
	e.reset(m.buf)
	m.insertTop(e, k, headerNames[k].name+": ", value)
	return e.apply(dst, m.body, nil, Span{-1, -1})
}

// removeTopValue records the removal of the first value of the headers of
// kind k: the whole line when it held only that value, else the value, its
// comma and the white space after it. It reports whether there was one.
func (m *Message) removeTopValue(e *editor, k HeaderKind) bool { return m.removeTopValues(e, k, 1) > 0 }

// forwardEdits records the forwarding edits of f (see Fix).
func (m *Message) forwardEdits(e *editor, f *Fix) error {
	if k := f.Insert.Kind; len(f.Insert.Value) > 0 {
		if k == HdrOther || k >= numHeaderKinds {
			return perr(0, "insert", ErrMalformed)
		}
		m.insertTop(e, k, headerNames[k].name+": ", f.Insert.Value)
	}
	if !m.request {
		if f.RemoveVia {
			m.removeTopValue(e, HdrVia)
		}
		return nil
	}
	if n := m.ownRoutes(f.RemoveRoute, f.RemoveRouteAlso); n > 0 {
		m.removeTopValues(e, HdrRoute, n)
	}
	if f.RemoveRURIAlias {
		u, err := ParseURI(m.buf, m.ruri)
		if err != nil {
			return err
		}
		if prm, ok := u.Param(m.buf, "alias"); ok {
			e.add(prm.All.Start, prm.All.End, nil)
			if tok, ok := u.Param(m.buf, aliasTokenParam); ok { // its signature goes with it
				e.add(tok.All.Start, tok.All.End, nil)
			}
		}
	}
	if len(f.AddVia) > 0 {
		m.insertTop(e, HdrVia, "Via: ", f.AddVia)
	}
	return nil
}

// ownRoutes returns how many of the top Route values are the proxy's own
// (Fix.RemoveRoute, Fix.RemoveRouteAlso): 0; 1 when the top one names
// either address; 2 when the next one names the other (a double
// Record-Route a dual-stack proxy wrote).
func (m *Message) ownRoutes(self, also netip.AddrPort) int {
	if !self.IsValid() {
		return 0
	}
	it := m.Values(HdrRoute)
	if !it.Next() {
		return 0
	}
	first := m.routeAddr(it.Span())
	if first != self && (!also.IsValid() || first != also) {
		return 0
	}
	if !also.IsValid() || !it.Next() {
		return 1
	}
	other := also
	if first == also {
		other = self
	}
	if m.routeAddr(it.Span()) == other {
		return 2
	}
	return 1
}

// routeAddr is the address a Route value's URI names (port 5060 when the
// URI has none; zero when it names no IP address).
func (m *Message) routeAddr(v Span) netip.AddrPort {
	na, err := ParseNameAddr(m.buf, v)
	if err != nil {
		return netip.AddrPort{}
	}
	u, err := ParseURI(m.buf, na.URI)
	if err != nil {
		return netip.AddrPort{}
	}
	a, ok := u.Addr(m.buf)
	if !ok {
		return netip.AddrPort{}
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

// removeTopValues removes the first n values of header k and returns how
// many there were: each header line they empty is dropped, and a line that
// keeps values loses the removed ones with their comma.
func (m *Message) removeTopValues(e *editor, k HeaderKind, n int) int {
	it := m.Values(k)
	line, start, next, removed := -1, 0, 0, 0
	flush := func() {
		if line < 0 {
			return
		}
		h := &m.hdrs[line]
		if next >= h.value.End && start == skipLWS(m.buf, h.value.Start, h.value.End) {
			e.add(h.line.Start, h.line.End, nil) // no value left: drop the line
		} else {
			e.add(start, skipLWS(m.buf, next, h.value.End), nil)
		}
	}
	for i := 0; i < n && it.Next(); i++ {
		if it.Header() != line {
			flush()
			line, start = it.Header(), it.Span().Start
		}
		_, next = splitValue(m.buf, it.Span().Start, m.hdrs[line].value.End)
		removed++
	}
	flush()
	return removed
}

// ResponseHop returns where a stateless proxy sends response m once its
// own Via, the top one, is removed (Fix.RemoveVia): the address of the
// second Via, from its received= and rport= parameters, else its sent-by
// (RFC 3261 §18.2.2, RFC 3581 §4). It fails with ErrNotResponse for a
// request, ErrNoHeader without a second Via, and ErrBadAddress when that
// Via names no IP address and port (a host name needs DNS).
func (m *Message) ResponseHop() (netip.AddrPort, error) {
	if m.request || m.buf == nil {
		return netip.AddrPort{}, ErrNotResponse
	}
	it := m.Values(HdrVia)
	it.Next() // the proxy's own
	if !it.Next() {
		return netip.AddrPort{}, perr(0, "second Via", ErrNoHeader)
	}
	v, err := ParseVia(m.buf, it.Span())
	if err != nil {
		return netip.AddrPort{}, err
	}
	a, ok := v.SourceAddr(m.buf)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("second Via %q: %w", it.Bytes(), ErrBadAddress)
	}
	return a, nil
}

// RURIAlias returns the destination the first ;alias parameter of request
// m's Request-URI names (Kamailio handle_ruri_alias; Fix.RemoveRURIAlias
// removes the parameter). found is false without an alias. Anyone can write
// an alias into a Request-URI, so the destination must pass p (nil: the
// zero DestPolicy, public addresses only), and with p.AliasKey carry the
// ;aliastok= that AppendFix with the same Fix.AliasKey wrote; when it does
// not, err matches ErrForbiddenDestination and a is the refused
// destination. Fix.RemoveRURIAlias removes the ;aliastok= too.
func (m *Message) RURIAlias(p *DestPolicy) (a Alias, found bool, err error) {
	if !m.request {
		return Alias{}, false, ErrNotRequest
	}
	u, err := ParseURI(m.buf, m.ruri)
	if err != nil {
		return Alias{}, false, err
	}
	prm, ok := u.Param(m.buf, "alias")
	if !ok {
		return Alias{}, false, nil
	}
	if a, err = ParseAlias(prm.Value.In(m.buf)); err != nil {
		return Alias{}, false, err
	}
	if p != nil && p.AliasKey != nil {
		tok, ok := u.Param(m.buf, aliasTokenParam)
		if !ok || !validAliasToken(p.AliasKey, prm.Value.In(m.buf), tok.Value.In(m.buf)) {
			return a, false, &DestError{Addr: a.Addr, Reason: "alias not signed by this proxy"}
		}
	}
	if err := p.Check(a.Addr); err != nil {
		return a, false, err
	}
	return a, true, nil
}
