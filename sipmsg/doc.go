// Package sipmsg scans SIP messages (RFC 3261) without copying, runs the NAT
// tests a proxy needs, and rewrites Via, Contact, alias, Path and
// Record-Route byte-exactly, for proxies and for user agents behind NAT.
//
// It is not a SIP stack: no transactions, no dialogs, no DNS. It gives the
// fixes Kamailio's nathelper, Asterisk's rewrite_contact/force_rport and
// PJSIP's contact and Via rewriting provide, on a []byte, faster than
// parsing a message with a general SIP library.
//
// Standards:
//   - RFC 3261: message syntax (§7, §25), compact header forms, header
//     folding, comma-separated lists (§7.3.1), Content-Length framing on
//     streams (§18.3), received= (§18.2.1), IPv6 references in URIs.
//   - RFC 3581: rport; a server fills it and always adds received=.
//   - RFC 3327 and RFC 5626: Path for edge proxies, flow tokens, the
//     CRLF CRLF ping / CRLF pong keep-alive on streams (§3.5.1).
//   - RFC 6223: the keep-alive parameter; sipmsg leaves "keep" alone in
//     Via rewrites and AppendOptions builds the OPTIONS keep-alive the
//     keepalive package sends when a peer does not negotiate it.
//   - RFC 5118: IPv6 in SIP (received= without brackets, hosts with).
//
// # Scanning
//
// Message.Parse keeps offsets into the buffer, never copies: header names in
// full or compact form (v, m, f, t, i, l, k, s, c, e, o, r, u, x, y, b, a,
// j, d, n) map to a HeaderKind, Values walks list values across header lines
// (commas inside quotes and <> do not split), ParseVia, ParseNameAddr and
// ParseURI take the values apart, with IPv6 references. NextFrame cuts one
// message or keep-alive at a time from a TCP/TLS stream and says how many
// bytes are missing. Sizes are bounded (MaxMessageSize, MaxHeaders); bad
// input gives a *ParseError that matches ErrMalformed, ErrIncomplete,
// ErrTooLarge or ErrTooManyHeaders with errors.Is. Nothing panics.
//
// # Invalid messages and smuggling
//
// A datagram's message ends where Content-Length says (RFC 4475
// §3.1.1.8): octets after it, such as a second request riding in the same
// datagram, are dropped by Parse, counted by Message.Trailing, and never
// copied by Bytes or any Append function, so they cannot reach a TCP or TLS
// next hop as a request of their own. Parse is lenient so that a UA reads
// what it can; a proxy calls Message.Check before forwarding, which
// rejects the invalid classes of RFC 4475 §3.1.2 that touch what sipmsg
// reads or writes with a typed error (ErrVersion, ErrRequestURI,
// ErrNoHeader, ErrMalformed), and answers a request with StatusFor(err)
// (505, 400, 513). Check's documentation lists what is tolerated and why;
// testdata/rfc4475 holds every message of the RFC with its tested answer.
//
// # Proxy side
//
// Message.NATTest runs Kamailio's nat_uac_test heuristics as named flags
// with the same bit values (ContactPrivate 1, ViaAddrDiffers 2, ViaPrivate
// 4, SDPPrivate 8, ViaPortDiffers 16, SourcePrivate 32, ContactDiffers 128,
// SDPDiffers 256) and returns those that fired. Private means
// ipaddr.IsPrivate. SDP tests go through an SDPCheck (SDPNATCheck uses
// sdp.CheckFrom). AppendRewriteSDP is a UA's rewrite of the SDP in its own
// message (sdp.Options: public address, port map), Content-Length fixed.
//
// AppendFix applies a Fix: received=/rport= in the top Via, the Contact
// rewritten to the source (fix_nated_contact) or given an
// ;alias=ip~port~proto (add_contact_alias; HandleRURIAlias restores it when
// a request is routed back, like handle_ruri_alias), Record-Route and Path
// insertion, and SDP rewriting with Content-Length kept right. The output
// equals the input outside the changed spans, keeps header order and
// compact names, scans again, and a second AppendFix with the same Fix
// changes nothing. RegistrationFor and AppendReceivedURI give a registrar
// fix_nated_register's received URI; AppendFlowToken and AppendPathValue
// give an edge proxy RFC 5626 Path values. A Signer lets a stateless proxy
// forward only responses to requests it forwarded: AppendBranch signs the
// branch of its own Via (HMAC over the request's top Via branch, Call-ID,
// From tag and CSeq number; the same for a CANCEL and the ACK of a failure
// answer, RFC 3261 §16.11) and OwnBranch checks it on the response.
//
// # Client side
//
// Message.PublicAddr reads received/rport from a response. ContactTracker
// keeps the address a UA advertises and says when the UA must register
// again because its public address changed (PJSIP's allow_contact_rewrite);
// it learns only from the registrar's flow (the registrar's address and
// the branch of the last REGISTER), so a forged response cannot move it.
// DetectALG compares a REGISTER with its 200 OK and reports the signs of a
// SIP ALG on the path, such as the Linux nf_nat_sip helper, which maps
// received= back to the UA's private address. AppendOptions builds an
// OPTIONS keep-alive.
//
// # Usage
//
// A proxy, for each datagram received from src:
//
//	var m sipmsg.Message // one per goroutine, reused
//	if err := m.Parse(pkt); err != nil {
//		return err // a request gets StatusFor(err) as its answer
//	}
//	if err := m.Check(); err != nil {
//		return err // same
//	}
//	fired, _ := m.NATTest(src, sipmsg.ContactPrivate|sipmsg.ViaAddrDiffers|sipmsg.ViaPortDiffers, sipmsg.SDPNATCheck)
//	fix := sipmsg.Fix{Via: true}
//	if fired != 0 {
//		fix.Contact = sipmsg.ContactAlias
//		fix.SDP = true
//	}
//	out, err := sipmsg.AppendFix(buf[:0], &m, src, &fix)
//
// A UA, after each response to its REGISTER:
//
//	if u := tracker.Observe(&resp, from); u.Reregister { // from: the packet's source
//		contact := tracker.AppendContact(nil, "alice", "")
//		// send a new REGISTER with contact
//	}
//
// # Allocation
//
// Parse, the Values and contact walks, NATTest and the Append functions
// allocate nothing when the destination buffer has room; with a nil or
// small buffer the output is the one allocation. That holds for SDP
// rewriting through the sdp package too.
//
// # Concurrency
//
// A Message is not safe for concurrent use, not even for reading: Parse
// fills it, and lookups, NATTest and the rewrites cache header kinds, the
// parsed top Via and Contacts in it. Use one Message
// per goroutine; the package functions are safe to call concurrently on
// different Messages. A Message refers to the buffer given to Parse, which
// must not change while the Message is used. ContactTracker is not safe for
// concurrent use either.
package sipmsg
