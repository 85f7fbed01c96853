package sipmsg

import (
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// ALGSign is one sign of a SIP ALG (an application-level gateway in a NAT
// that rewrites SIP) found by DetectALG.
type ALGSign uint8

// Signs of tampering.
const (
	// ALGViaChanged: the top Via of the response (which a server copies
	// from the request) is not the one the UA sent.
	ALGViaChanged ALGSign = 1 << iota
	// ALGReceivedPrivate: a server with a public address reports a private
	// received= address. No packet from a private source crosses the
	// internet, so something rewrote the response on the way back; the
	// Linux nf_nat_sip helper maps received= back to the UA's address.
	ALGReceivedPrivate
	// ALGContactChanged: the 200 OK to a REGISTER lists no Contact with the
	// URI the UA registered, although it lists contacts for the same user:
	// the registrar stored a rewritten Contact.
	ALGContactChanged
	// ALGFromChanged: the response's From differs from the request's
	// (RFC 3261 §8.2.6.2 requires a copy); ALGs rewrite From URIs.
	ALGFromChanged
	// ALGCallIDChanged: the response's Call-ID differs from the request's.
	ALGCallIDChanged
)

var algSignNames = [...]string{"via-changed", "received-private", "contact-changed", "from-changed", "call-id-changed"}

// String lists the signs separated by '|' ("none" when empty).
func (s ALGSign) String() string {
	if s == 0 {
		return "none"
	}
	var b []byte
	for i, n := range algSignNames {
		if s&(1<<i) != 0 {
			if len(b) > 0 {
				b = append(b, '|')
			}
			b = append(b, n...)
		}
	}
	return string(b)
}

// ALGReport is the result of DetectALG.
type ALGReport struct {
	Signs    ALGSign        // each sign of an ALG seen in the answer, one bit each
	Received netip.AddrPort // what the server reported in received/rport (zero when nothing)
}

// Tampered reports whether any sign was found.
func (r ALGReport) Tampered() bool { return r.Signs != 0 }

// DetectALG compares request req, as the UA sent it to server, with the
// response resp the UA received for it, and reports the signs that a SIP
// ALG on the path rewrote the request (and perhaps the response). Use it on
// the 200 OK to a REGISTER: the registrar echoes the Via and the
// registered Contact there, and with nathelper adds received= and rport=.
func DetectALG(req, resp *Message, server netip.AddrPort) (ALGReport, error) {
	var r ALGReport
	if !req.request || req.buf == nil {
		return r, ErrNotRequest
	}
	if resp.request || resp.buf == nil {
		return r, ErrNotResponse
	}
	qb, sb := req.buf, resp.buf
	qv, err := req.ParseTopVia()
	if err != nil {
		return r, err
	}
	sv, err := resp.ParseTopVia()
	if err != nil {
		return r, err
	}
	if !equalFoldBytes(qv.SentBy.In(qb), sv.SentBy.In(sb)) ||
		!equalFoldBytes(qv.Transport.In(qb), sv.Transport.In(sb)) ||
		qv.HasBranch != sv.HasBranch || string(qv.Branch.Value.In(qb)) != string(sv.Branch.Value.In(sb)) {
		r.Signs |= ALGViaChanged
	}
	if pub, ok := resp.PublicAddr(); ok {
		r.Received = pub
	}
	if ra, ok := sv.ReceivedAddr(sb); ok && ipaddr.IsPrivate(ra) && server.IsValid() && !ipaddr.IsPrivate(server.Addr()) {
		r.Signs |= ALGReceivedPrivate
	}
	if qi := req.Index(HdrFrom); qi >= 0 {
		si := resp.Index(HdrFrom)
		if si < 0 || !sameNameAddrURI(qb, req.hdrs[qi].value, sb, resp.hdrs[si].value) {
			r.Signs |= ALGFromChanged
		}
	}
	if qc, ok := req.Get(HdrCallID); ok {
		if sc, ok := resp.Get(HdrCallID); !ok || string(qc) != string(sc) {
			r.Signs |= ALGCallIDChanged
		}
	}
	if req.IsMethod("REGISTER") && resp.status/100 == 2 {
		if contactMissing(req, resp) {
			r.Signs |= ALGContactChanged
		}
	}
	return r, nil
}

// contactMissing reports whether some Contact URI of the REGISTER req is
// absent from the 200 OK resp while resp lists contacts of the same user.
func contactMissing(req, resp *Message) bool {
	qb, sb := req.buf, resp.buf
	it := req.Values(HdrContact)
	for it.Next() {
		qn, err := ParseNameAddr(qb, it.Span())
		if err != nil || qn.Star {
			continue
		}
		qu, err := ParseURI(qb, qn.URI)
		if err != nil || !qu.SIP {
			continue
		}
		sameUser, found := false, false
		jt := resp.Values(HdrContact)
		for jt.Next() {
			sn, err := ParseNameAddr(sb, jt.Span())
			if err != nil || sn.Star {
				continue
			}
			su, err := ParseURI(sb, sn.URI)
			if err != nil || !su.SIP {
				continue
			}
			if string(su.User.In(sb)) != string(qu.User.In(qb)) {
				continue
			}
			sameUser = true
			if equalFoldBytes(su.HostPort.In(sb), qu.HostPort.In(qb)) {
				found = true
				break
			}
		}
		if sameUser && !found {
			return true
		}
	}
	return false
}

// sameNameAddrURI compares the URIs of two name-addr values.
func sameNameAddrURI(ab []byte, as Span, bb []byte, bs Span) bool {
	an, err1 := ParseNameAddr(ab, as)
	bn, err2 := ParseNameAddr(bb, bs)
	if err1 != nil || err2 != nil {
		return string(as.In(ab)) == string(bs.In(bb))
	}
	return equalFoldBytes(an.URI.In(ab), bn.URI.In(bb))
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}
