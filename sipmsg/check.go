package sipmsg

import "errors"

// Check reports whether a message Parse accepted is one a proxy may
// forward: what sipmsg reads or writes is well formed (RFC 3261 §7, §8.1.1,
// §20; the invalid classes of RFC 4475 §3.1.2). Parse is lenient on
// purpose, so that a UA or a registrar can read what it can; a proxy calls
// Check before AppendFix and, for a request, answers StatusFor(err)
// instead of forwarding. Check allocates nothing.
//
// It rejects, with a *ParseError naming the place:
//   - another SIP version in the start line or the top Via (RFC 4475
//     §3.1.2.16): ErrVersion, answered with 505;
//   - a Request-URI in <> (§3.1.2.7), a sip/sips Request-URI that does not
//     scan or carries escaped headers (§3.1.2.11): ErrRequestURI, 400;
//   - a missing Via, From, To, Call-ID or CSeq (§3.3.1), a second From,
//     To, Call-ID, CSeq or Max-Forwards (§3.3.8): ErrNoHeader or
//     ErrMalformed, 400;
//   - a CSeq whose number is not below 2**31 or whose method differs from
//     the request's (§3.1.2.4, §3.1.2.5, §3.1.2.17, §3.1.2.18), a
//     Max-Forwards above 255 (§3.1.2.4), a status code above 699
//     (§3.1.2.19): ErrMalformed;
//   - a top Via or a Contact that does not scan (§3.1.2.1), a Contact
//     addr-spec outside <> with URI headers (§3.1.2.13), a From or To with
//     an unterminated quote (§3.1.2.6), an unquoted display name with a
//     comma (§3.1.2.15) or white space inside <> (§3.1.2.14): ErrMalformed.
//
// Parse itself already rejects what no reader can use: extra white space in
// the Request-Line (§3.1.2.8–§3.1.2.10), a Content-Length that is negative,
// repeated with another value or larger than the datagram (§3.1.2.2,
// §3.1.2.3, §3.3.9), a status code of more than three digits (§3.1.2.19),
// and a header section without its empty line.
//
// Check tolerates, because a proxy forwards them unchanged and they touch
// nothing sipmsg reads or writes: unknown URI schemes in the Request-URI,
// To or From (§3.3.2, §3.3.3, §3.3.4; the UAS answers 416), other
// non-token characters in display names, a bad Date (§3.1.2.12), an overlarge
// Expires (§3.1.2.4), unknown Require values or Content-Types (§3.3.5,
// §3.3.6), Max-Forwards 0 (§3.3.11; the proxy answers 483 itself), a
// missing branch (§3.2.1) and RFC 2543 messages (§3.4.1).
func (m *Message) Check() error {
	if m.buf == nil {
		return perr(0, "check", ErrMalformed)
	}
	b := m.buf
	if !equalFold(m.version.In(b), "SIP/2.0") {
		return perr(m.version.Start, "SIP version", ErrVersion)
	}
	if m.request {
		if err := m.checkRequestURI(); err != nil {
			return err
		}
	} else if m.status > 699 {
		return perr(m.reason.Start, "status code", ErrMalformed)
	}
	if err := m.checkSingles(); err != nil {
		return err
	}
	if err := m.checkCSeq(); err != nil {
		return err
	}
	v, err := m.topVia()
	if err != nil {
		return err
	}
	if !viaVersion20(b, v.All) {
		return perr(v.All.Start, "Via protocol", ErrVersion)
	}
	it := m.contactIter()
	for it.next() {
		if it.err != nil {
			return it.err
		}
		if !it.na.Bracketed && it.u.Headers.Len() > 0 {
			return perr(it.na.URI.Start, "Contact", ErrMalformed)
		}
	}
	for _, k := range [...]HeaderKind{HdrFrom, HdrTo} {
		i := m.Index(k)
		na, err := ParseNameAddr(b, m.hdrs[i].value)
		if err != nil {
			return err
		}
		if na.Bracketed && na.URI.Len() > 0 && (isLWS(b[na.URI.Start]) || isLWS(b[na.URI.End-1])) {
			return perr(na.URI.Start, k.String(), ErrMalformed)
		}
	}
	return nil
}

// checkRequestURI: no <>, and a sip/sips URI scans without headers.
func (m *Message) checkRequestURI() error {
	b := m.buf
	r := m.ruri
	if b[r.Start] == '<' || b[r.End-1] == '>' {
		return perr(r.Start, "Request-URI", ErrRequestURI)
	}
	var u URI
	if err := parseURI(&u, b, r); err != nil {
		return perr(r.Start, "Request-URI", ErrRequestURI)
	}
	if u.SIP && u.Headers.Len() > 0 {
		return perr(u.Headers.Start, "Request-URI", ErrRequestURI)
	}
	return nil
}

// checkSingles: the headers every message has, once each.
func (m *Message) checkSingles() error {
	var seen [numHeaderKinds]bool
	for i := 0; i < m.nhdr; i++ {
		switch k := m.HeaderKind(i); k {
		case HdrFrom, HdrTo, HdrCallID, HdrCSeq, HdrMaxForwards:
			if seen[k] {
				return perr(m.hdrs[i].name.Start, k.String(), ErrMalformed)
			}
			seen[k] = true
		case HdrVia:
			seen[k] = true
		}
	}
	for _, k := range [...]HeaderKind{HdrVia, HdrFrom, HdrTo, HdrCallID, HdrCSeq} {
		if !seen[k] {
			return perr(m.hdrEnd, k.String(), ErrNoHeader)
		}
	}
	if i := m.Index(HdrMaxForwards); i >= 0 {
		if _, ok := parseUint(m.hdrs[i].value.In(m.buf), 255); !ok {
			return perr(m.hdrs[i].value.Start, "Max-Forwards", ErrMalformed)
		}
	}
	return nil
}

// checkCSeq: a number below 2**31, then the request's method.
func (m *Message) checkCSeq() error {
	i := m.Index(HdrCSeq)
	s := m.hdrs[i].value
	v := s.In(m.buf)
	d := 0
	for d < len(v) && isDigit(v[d]) {
		d++
	}
	if _, ok := parseUint(v[:d], 1<<31-1); !ok {
		return perr(s.Start, "CSeq", ErrMalformed)
	}
	meth := m.CSeqMethod()
	if len(meth) == 0 || (m.request && string(meth) != string(m.Method())) {
		return perr(s.Start+d, "CSeq method", ErrMalformed)
	}
	return nil
}

// viaVersion20 reports whether the sent-protocol of the via-parm at s says
// version 2.0 ("SIP / 2.0 / UDP" with any LWS).
func viaVersion20(b []byte, s Span) bool {
	i := skipLWS(b, s.Start, s.End)
	for i < s.End && isToken(b[i]) {
		i++
	}
	i = skipLWS(b, i, s.End)
	if i >= s.End || b[i] != '/' {
		return false
	}
	i = skipLWS(b, i+1, s.End)
	return i+3 <= s.End && string(b[i:i+3]) == "2.0" && (i+3 == s.End || !isToken(b[i+3]))
}

// StatusFor returns the status code a proxy or UAS answers a request with
// when Parse or Check returned err: 505 for ErrVersion, 513 for
// ErrTooLarge, 400 for the other sipmsg errors, and 0 for nil or an error
// that is not this package's. A message that fails as a response is
// dropped, never answered. On a stream, ErrIncomplete means wait for more
// bytes (see NextFrame); on a datagram it is answered with 400.
func StatusFor(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrVersion):
		return 505
	case errors.Is(err, ErrTooLarge):
		return 513
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrIncomplete), errors.Is(err, ErrRequestURI),
		errors.Is(err, ErrNoHeader), errors.Is(err, ErrTooManyHeaders):
		return 400
	}
	return 0
}
