// Package sipedge is the media half of the OpenSER NAT traversal algorithm
// for a SIP edge proxy with a set of rtpengine relays: when the caller or
// the callee is behind NAT, engage the relay on the INVITE (and on a
// re-INVITE or UPDATE with SDP), rewrite the answer on 183 and 200, delete
// the session on BYE, CANCEL and failure answers to the dialog-creating
// INVITE; leave calls between public peers alone.
//
// The edge knows a party is behind NAT from three marks, all in the SIP
// messages themselves, so it keeps no dialog state:
//
//   - the sender of this message failed the proxy's NAT test
//     (sipmsg.Message.NATTest);
//   - the Request-URI carries an alias (sipmsg's add_contact_alias): the
//     registrar stored the NATed contact the edge marked at REGISTER;
//   - the edge's own Route value carries ";nat=yes": the edge put it in its
//     Record-Route (AppendRecordRoute) when the dialog began with a NATed
//     party, and re-INVITEs, UPDATEs and BYEs bring it back.
//
// Responses need no mark of their own: the edge answers at the hop whose Via
// says it offered (Relay.AppendViaMark). That mark is signed (an HMAC under
// Config.Key of the branch, Call-ID, From tag and CSeq of the request), so
// the edge acts only on responses to requests it forwarded. A response that
// brings the edge's mark without its signature (made up, or copied from
// another call) is refused with ErrForged, logged and counted
// (Stats.Forged), and cannot move a call's media or end it.
//
// Config.All relays every call instead, for networks where a NAT hides
// itself (a router's SIP ALG that rewrites the private addresses makes
// every NAT test pass).
//
// A BYE or CANCEL also deletes any call the rtpengine.Set holds (an offer
// went through), marks or not, but only when it comes from a party of the
// call: the relay remembers, per call, the sources its INVITE, offers and
// answers came from (as long as the Set holds the call). A BYE from
// another source (anyone can send one with a Call-ID it guessed or
// learnt) deletes nothing at once: the edge forwards it with its signed
// "end" mark (Action Confirm) and deletes when the far side answers it
// 2xx, so a forged BYE the far side refuses (481) leaves the call alone. A
// CANCEL must come from the source of the INVITE it cancels; one from
// elsewhere is refused (ErrRefused: not to be forwarded, since it would
// cancel the caller's INVITE downstream). Both are logged and counted
// (Stats.Refused, Stats.Confirmed); Config.AnySource trusts every BYE and
// CANCEL as before.
//
// The edge marks a BYE or CANCEL it deleted the session for ("ended"), so
// that it is handled once where it passes the edge twice (two UAs of one
// edge) or two edges. It marks an INVITE an edge on the way relayed
// ("leg", Action Leg), so that the callee answering it is known as a party
// and its BYE trusted.
//
// A failure answer deletes only with the edge's signed mark, and only when
// it answers the dialog-creating INVITE. A re-INVITE answered 491 Request
// Pending, 488 Not Acceptable Here or any other failure leaves the
// established call's session alone (RFC 3261 §14.1, RFC 6337 §3.4: the
// session in effect before it stays; counted in Stats.Kept). Kamailio's
// rtpengine_manage deletes on any failure answer to an INVITE, and its
// stock configuration runs it in the failure route of in-dialog INVITEs
// too, so there a failed re-INVITE ends the call's media. rtpengine has no
// command that takes back an offer, so the edge leaves the re-offer in
// place (rtpengine keeps relaying to the addresses it learned), and the UA
// that sent it re-offers what it reinstated, as RFC 6141 asks.
//
// A late offer (an INVITE without SDP) is relayed too: the edge marks its
// Via, offers the 2xx's SDP with the tags swapped (the callee offers) and
// answers with the ACK's SDP. Its own Via marks (Relay.AppendViaMark) make
// sure each offer and answer is sent once, at the hop that owns it.
//
// Not handled: a NATed callee is recognised by the alias in its registered
// Contact, so a proxy that rewrites Contacts instead (fix_nated_contact)
// relays only for NATed callers.
//
// When no rtpengine answers, the message goes on unchanged (signalling only):
// the failure is logged and counted in Stats, and the proxy may fall back to
// rewriting the SDP's private address (sipmsg.Fix.SDP).
//
// # Usage
//
//	relay, _ := sipedge.New(sipedge.Config{Set: set, Self: self})
//	body, act, err := relay.Request(ctx, buf[:0], &msg, src, natFired, "")
//	if body != nil { fix.Body = sipedge.Replace(body) } // the relay's SDP
//	via = relay.AppendViaMark(via, &msg, act) // the Via the edge adds, marked for act
//	// act says what was done; err is already logged and counted
//
// # Concurrency
//
// A Relay is safe for concurrent use.
package sipedge
