package sipmsg

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// ContactMode says how a proxy fixes the Contact of a NATed UA.
type ContactMode uint8

// Contact modes.
const (
	ContactKeep ContactMode = iota // leave Contact alone
	// ContactRewrite replaces the Contact URI host:port with the source
	// address (Kamailio fix_nated_contact). It breaks RFC 3261 but works
	// with any next hop.
	ContactRewrite
	// ContactAlias adds ;alias=ip~port~proto to the Contact URI when the
	// source differs from it (Kamailio add_contact_alias/set_contact_alias);
	// HandleRURIAlias restores it when a request is routed back.
	ContactAlias
)

// Fix says what a proxy changes in a message it received from a UA behind
// NAT. The zero value changes nothing.
type Fix struct {
	// Via adds received= and fills rport= in the top Via of a request
	// (RFC 3261 §18.2.1, RFC 3581).
	Via bool
	// ForceRport adds rport= even when the UA did not ask for it
	// (Kamailio force_rport). Implies Via.
	ForceRport bool
	// Contact fixes the Contact header(s).
	Contact ContactMode
	// Transport is the transport the message arrived on (alias and
	// received URIs); zero means UDP.
	Transport Transport
	// AliasKey, when set, signs every alias ContactAlias writes with an
	// ;aliastok= URI parameter (an HMAC of the alias under this key), so
	// that HandleRURIAlias with a DestPolicy holding the same key follows
	// only aliases this proxy wrote, never one a request brings along.
	AliasKey []byte
	// RecordRoute, when set, is inserted as the top Record-Route value of a
	// dialog-creating request, e.g. "<sip:203.0.113.2;lr>". Not inserted
	// twice.
	RecordRoute []byte
	// Path, when set, is inserted as the top Path value of a REGISTER
	// (RFC 3327, RFC 5626 §5.1), e.g. built with AppendPathValue.
	Path []byte
	// SDP rewrites private c= and o= addresses of an SDP body to the
	// source address (Kamailio fix_nated_sdp flags 2|8, through the sdp
	// package); Content-Length follows. Ignored when Body is set.
	SDP bool
	// Body, when set, rewrites the body with a caller's function;
	// Content-Length follows.
	Body BodyRewriter

	// The forwarding edits of a stateless proxy (RFC 3261 §16.6, §16.7),
	// so that it forwards a message in one pass into one buffer. With any
	// of them set the output is the forwarded message: applying the Fix to
	// it again would forward it again.

	// RemoveRoute, when valid, removes the top Route value of a request
	// when its URI names this address (the proxy's own Route on a
	// loose-routed request, §16.4, §16.12; a URI without a port names
	// 5060).
	RemoveRoute netip.AddrPort
	// RemoveRouteAlso is the proxy's address in its other family (a
	// dual-stack proxy): the top Route value is removed when it names
	// RemoveRoute or RemoveRouteAlso, and the value after it too when it
	// names the other one (the two halves of the double Record-Route a
	// proxy writes between an IPv4 and an IPv6 leg).
	RemoveRouteAlso netip.AddrPort
	// RemoveRURIAlias removes the first ;alias parameter of a request's
	// Request-URI (Kamailio handle_ruri_alias); Message.RURIAlias returns
	// the destination it names, where the request goes.
	RemoveRURIAlias bool
	// AddVia, when set, is inserted as the top Via value of a request,
	// e.g. "SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bK..." (the proxy's
	// own Via, §16.6 step 8). Not inserted twice.
	AddVia []byte
	// RemoveVia removes the top Via value of a response (the proxy's own,
	// §16.7 step 3); Message.ResponseHop returns where the response goes
	// then.
	RemoveVia bool
	// Insert, when its Value is set, is inserted as the first value of its
	// Kind, as AppendInsertTop does (an RFC 5626 edge adds Flow-Timer to a
	// REGISTER answer so). Not inserted twice.
	Insert HeaderValue
}

// HeaderValue is one value of a header of a known kind.
type HeaderValue struct {
	Kind  HeaderKind // the header to write
	Value []byte     // the value, written as given
}

// needsSource reports whether f has a fix that writes the source address.
func (f *Fix) needsSource() bool { return f.Via || f.ForceRport || f.Contact != ContactKeep || f.SDP }

// AppendFix appends m, received from src, with the fixes in f applied to
// dst. Everything outside the changed spans is copied byte for byte; header
// order and compact names are kept; applying the same Fix (without
// forwarding edits) to the output changes nothing. src may be the zero
// AddrPort when f has no fix that writes it (Via, ForceRport, Contact,
// SDP). It allocates only when dst must grow.
func AppendFix(dst []byte, m *Message, src netip.AddrPort, f *Fix) ([]byte, error) {
	if m.buf == nil {
		return dst, perr(0, "rewrite", ErrMalformed)
	}
	if f.needsSource() && (!src.IsValid() || src.Port() == 0) {
		return dst, ErrBadAddress
	}
	e := &m.ed
	e.reset(m.buf)
	tr := f.Transport
	if tr == TransportUnknown {
		tr = UDP
	}
	if !e.stOK || e.stSrc != src {
		e.st.set(src)
		e.stSrc, e.stOK = src, true
	}
	st := &e.st
	if (f.Via || f.ForceRport) && m.request {
		if err := m.editVia(e, src, st, f.ForceRport); err != nil {
			return dst, err
		}
	}
	switch f.Contact {
	case ContactRewrite:
		if err := m.editContacts(e, src, st, tr, false, nil); err != nil {
			return dst, err
		}
	case ContactAlias:
		if err := m.editContacts(e, src, st, tr, true, f.AliasKey); err != nil {
			return dst, err
		}
	}
	if len(f.RecordRoute) > 0 && m.request && !m.IsMethod("REGISTER") {
		m.insertTop(e, HdrRecordRoute, "Record-Route: ", f.RecordRoute)
	}
	if len(f.Path) > 0 && m.IsMethod("REGISTER") {
		m.insertTop(e, HdrPath, "Path: ", f.Path)
	}
	if err := m.forwardEdits(e, f); err != nil {
		return dst, err
	}
	cl := m.clValue()
	if f.Body == nil && f.SDP && m.body.Len() > 0 && m.hasSDP() {
		pub := src.Addr()
		return e.apply(dst, m.body, func(d, body []byte) ([]byte, error) { return rewriteSDP(d, body, pub) }, cl)
	}
	return e.apply(dst, m.body, f.Body, cl)
}

// AppendViaReceived appends m with received= and rport= set in its top Via
// for source src (RFC 3261 §18.2.1, RFC 3581). force adds rport= when the
// UA did not ask for it.
func AppendViaReceived(dst []byte, m *Message, src netip.AddrPort, force bool) ([]byte, error) {
	return AppendFix(dst, m, src, &Fix{Via: true, ForceRport: force})
}

// AppendFixContact appends m with every Contact URI's host:port replaced by
// src (Kamailio fix_nated_contact).
func AppendFixContact(dst []byte, m *Message, src netip.AddrPort) ([]byte, error) {
	return AppendFix(dst, m, src, &Fix{Contact: ContactRewrite})
}

// AppendContactAlias appends m with ;alias=ip~port~proto added to every
// Contact URI that src (over transport t) differs from (Kamailio
// add_contact_alias without arguments). An existing alias with another
// value is replaced.
func AppendContactAlias(dst []byte, m *Message, src netip.AddrPort, t Transport) ([]byte, error) {
	return AppendFix(dst, m, src, &Fix{Contact: ContactAlias, Transport: t})
}

// AppendRecordRoute appends m with value inserted as its first
// Record-Route value (unless it already is), e.g. "<sip:203.0.113.2;lr>".
func AppendRecordRoute(dst []byte, m *Message, value []byte) ([]byte, error) {
	e := &m.ed
	e.reset(m.buf)
	if m.buf == nil {
		return dst, perr(0, "rewrite", ErrMalformed)
	}
	m.insertTop(e, HdrRecordRoute, "Record-Route: ", value)
	return e.apply(dst, m.body, nil, Span{-1, -1})
}

// srcText is the source address formatted once for the rewrites, as
// little-endian words that are appended whole (appendWords). It holds no
// slices of itself, so that it stays on the stack.
type srcText struct {
	host     [6]uint64 // the address as a SIP host: IPv6 in brackets
	nhost    int
	brackets bool
	port     uint64
	nport    int
}

func (t *srcText) set(src netip.AddrPort) {
	a := src.Addr().Unmap()
	t.brackets = false
	if a.Is4() {
		t.host[0], t.host[1], t.nhost = ipv4Words(a.As4())
	} else {
		var b [48]byte
		t.nhost = len(appendHost(b[:0], a))
		t.brackets = t.nhost > 1 && b[0] == '['
		for i := range t.host {
			t.host[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
	}
	t.port, t.nport = portWord(src.Port())
}

// appendHost appends the address as a SIP host: IPv6 in brackets.
func (t *srcText) appendHost(dst []byte) []byte {
	if t.nhost <= 16 { // IPv4: one pair of words
		return appendWords(dst, t.nhost, t.host[0], t.host[1])
	}
	for k := 0; k < t.nhost; k += 16 {
		dst = appendWords(dst, min(t.nhost-k, 16), t.host[k/8], t.host[k/8+1])
	}
	return dst
}

// appendPort appends the port in decimal.
func (t *srcText) appendPort(dst []byte) []byte { return appendWords(dst, t.nport, t.port, 0) }

// appendParam appends the address as a Via received= value: IPv6 without
// brackets (RFC 3261 §20.42 grammar).
func (t *srcText) appendParam(dst []byte) []byte {
	if !t.brackets {
		return t.appendHost(dst)
	}
	var b [48]byte
	for i, w := range t.host {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
	return append(dst, b[1:t.nhost-1]...)
}

func (m *Message) editVia(e *editor, src netip.AddrPort, st *srcText, force bool) error {
	b := m.buf
	v, err := m.topVia()
	if err != nil {
		return err
	}
	srcIP := src.Addr().Unmap()
	a, isIP := v.HostAddr(b)
	rport := v.HasRport || force
	needRecv := rport || !isIP || a.Unmap() != srcIP
	end := v.All.End
	recvDone := false
	if v.HasRport {
		if old, ok := v.RportValue(b); !ok || old != int(src.Port()) {
			t := st.appendPort(append(e.buf(), "rport="...))
			if v.Rport.All.End == end && needRecv && !v.HasRecv {
				// a trailing ;rport (the usual place) and the received=
				// inserted after it are one edit
				t = st.appendParam(append(t, ";received="...))
				recvDone = true
			}
			e.add(v.Rport.Name.Start, v.Rport.All.End, t)
		}
	}
	if rport && !v.HasRport {
		e.add(end, end, st.appendPort(append(e.buf(), ";rport="...)))
	}
	if v.HasRecv {
		if old, ok := v.ReceivedAddr(b); !ok || old.Unmap() != srcIP {
			t := st.appendParam(append(e.buf(), "received="...))
			e.add(v.Received.Name.Start, v.Received.All.End, t)
		}
	} else if needRecv && !recvDone {
		e.add(end, end, st.appendParam(append(e.buf(), ";received="...)))
	}
	return nil
}

func (m *Message) editContacts(e *editor, src netip.AddrPort, st *srcText, tr Transport, alias bool, key []byte) error {
	b := m.buf
	it := m.contactIter()
	for it.next() {
		if it.err != nil {
			return it.err
		}
		na, u := it.na, it.u
		if na.Star || !u.SIP {
			continue
		}
		if alias {
			if err := editAlias(e, b, na, u, src, tr, key); err != nil {
				return err
			}
			continue
		}
		a, isIP := u.Addr(b)
		if isIP && a.Unmap() == src.Addr().Unmap() && u.Port == int(src.Port()) {
			continue
		}
		e.add(u.HostPort.Start, u.HostPort.End, st.appendPort(append(st.appendHost(e.buf()), ':')))
	}
	return nil
}

func editAlias(e *editor, b []byte, na *NameAddr, u *URI, src netip.AddrPort, tr Transport, key []byte) error {
	old, hasOld := u.Param(b, "alias")
	a, isIP := u.Addr(b)
	port := u.Port
	if port == 0 {
		port = int(uriTransport(b, u).DefaultPort())
	}
	same := isIP && a.Unmap() == src.Addr().Unmap() && port == int(src.Port()) && uriTransport(b, u) == tr
	if hasOld {
		want := appendAliasValue(e.buf(), src, tr)
		if string(old.Value.In(b)) != string(want) {
			t := appendAliasValue(append(e.buf(), "alias="...), src, tr)
			e.add(old.Name.Start, old.All.End, t)
		}
		if key != nil {
			editAliasToken(e, b, u, old.All.End, src, tr, key)
		}
		return nil
	}
	if same {
		return nil
	}
	at := u.Params.End
	if !na.Bracketed {
		// an addr-spec: its parameters belong to the header, so the URI
		// must get angle brackets to carry a URI parameter; one with
		// headers, or with a '>' that would end the brackets, is not
		// valid outside them (RFC 3261 §20) and cannot be bracketed
		if u.Headers.Len() > 0 || bytes.ContainsAny(na.URI.In(b), "<>\"") {
			return perr(na.URI.Start, "Contact", ErrMalformed)
		}
		e.add(na.URI.Start, na.URI.Start, append(e.buf(), '<'))
	}
	e.add(at, at, appendAliasParams(e.buf(), src, tr, key))
	if !na.Bracketed {
		e.add(na.URI.End, na.URI.End, append(e.buf(), '>'))
	}
	return nil
}

// appendAliasParams appends ";alias=ip~port~proto" and, with a key,
// ";aliastok=" its token.
func appendAliasParams(dst []byte, src netip.AddrPort, tr Transport, key []byte) []byte {
	dst = append(dst, ";alias="...)
	vs := len(dst)
	dst = appendAliasValue(dst, src, tr)
	if key == nil {
		return dst
	}
	v := dst[vs:]
	dst = append(dst, ";"+aliasTokenParam+"="...)
	return appendAliasToken(dst, key, v)
}

// editAliasToken makes the URI's aliastok the token of the alias for src:
// replaced when it differs, inserted at after when missing.
func editAliasToken(e *editor, b []byte, u *URI, after int, src netip.AddrPort, tr Transport, key []byte) {
	var vb [maxAliasValue]byte
	v := appendAliasValue(vb[:0], src, tr)
	old, ok := u.Param(b, aliasTokenParam)
	if ok && validAliasToken(key, v, old.Value.In(b)) {
		return
	}
	t := appendAliasToken(append(e.buf(), aliasTokenParam+"="...), key, v)
	if ok {
		e.add(old.Name.Start, old.All.End, t)
		return
	}
	e.add(after, after, appendAliasToken(append(e.buf(), ";"+aliasTokenParam+"="...), key, v))
}

// appendAliasValue appends ip~port~proto (Kamailio's alias format; IPv6
// in brackets).
func appendAliasValue(dst []byte, src netip.AddrPort, tr Transport) []byte {
	dst = appendHost(dst, src.Addr())
	dst = append(dst, '~')
	dst = appendPort(dst, src.Port())
	dst = append(dst, '~')
	return append(dst, byte('0'+tr))
}

// insertTop inserts "Name: value\r\n" before the first header of kind k,
// or after the last Via when there is none; nothing when the first value
// of kind k already equals value.
func (m *Message) insertTop(e *editor, k HeaderKind, prefix string, value []byte) {
	at := -1
	if i := m.Index(k); i >= 0 {
		it := m.Values(k)
		if it.Next() && string(it.Bytes()) == string(value) {
			return
		}
		at = m.hdrs[i].line.Start
	} else {
		for i := m.nhdr - 1; i >= 0 && k != HdrVia; i-- {
			if m.isKind(i, HdrVia) {
				at = m.hdrs[i].line.End
				break
			}
		}
		if at < 0 {
			at = m.start.End
		}
	}
	e.add(at, at, append(e.buf(), prefix...))
	e.addExt(at, at, value)
	e.add(at, at, append(e.buf(), "\r\n"...))
}

// clValue returns the span of the Content-Length value, Start < 0 when the
// message has none: where editor.apply writes a changed body's length.
func (m *Message) clValue() Span {
	if m.clIdx < 0 {
		return Span{-1, -1}
	}
	return m.hdrs[m.clIdx].value
}
