package sipedge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/sdp"
	"github.com/sipnat/sipnat/sipmsg"
)

// Action is what the relay did for a message.
type Action uint8

// The actions.
const (
	None     Action = iota // nothing: no SDP, no NATed party, or not a method the relay cares about
	Offered                // an offer: the body is the relay's SDP
	Answered               // an answer: the body is the relay's SDP
	Late                   // a late offer (request without SDP, a party behind NAT): the response's SDP is the offer
	Deleted                // the call's relay session was deleted
	Failed                 // the relay was needed but did not answer or refused: signalling only
	Confirm                // a BYE or CANCEL from a source not seen in the dialog: mark the Via (AppendViaMark); the far side's 2xx deletes
	Refused                // a CANCEL from another source than its INVITE: do not forward it (ErrRefused)
	Leg                    // an INVITE or UPDATE an edge on the way relayed, going to the other party: mark the Via (AppendViaMark) so that its answerer is known as a party
)

// String says what the action is in words ("offer", "delete on 2xx"), for logs.
func (a Action) String() string {
	switch a {
	case Offered:
		return "offer"
	case Answered:
		return "answer"
	case Deleted:
		return "delete"
	case Late:
		return "late offer"
	case Failed:
		return "failed"
	case Confirm:
		return "delete on 2xx"
	case Refused:
		return "refused"
	case Leg:
		return "relayed on the way"
	}
	return "none"
}

// Config configures a Relay.
type Config struct {
	// Set is the rtpengine set (required).
	Set *rtpengine.Set
	// Self is the edge's address as its Record-Route and Route values
	// name it (required).
	Self netip.AddrPort
	// ICE is what the relay does with ICE candidates; "" means
	// rtpengine.ICERemove (the relay is the path).
	ICE rtpengine.ICE
	// Family is the address family the relay offers; "" keeps the SDP's.
	// A family given to Request or Response overrides it.
	Family rtpengine.Family
	// AltSelf is the edge's address in its other family (a dual-stack
	// edge: natproxy's -dual): Via marks and ";nat=yes" Route values at
	// either address are the edge's. Zero: single-stack.
	AltSelf netip.AddrPort
	// All relays every call, NATed or not: for networks where a NAT hides
	// itself, such as a router whose SIP ALG rewrites the private addresses
	// so that no NAT test fires (the relay is then the only safe path).
	All bool
	// Key signs the edge's Via marks (AppendViaMark) so that a response
	// is acted on only when it answers a request the edge forwarded. Nil
	// means a random key made by New: marks then do not outlive the
	// process (a response to an offer made before a restart is refused
	// like a forged one). Edges that answer at one address share a key.
	Key []byte
	// AnySource deletes a call's session on any BYE or CANCEL with its
	// Call-ID, whoever sends it. By default (false) the edge deletes at
	// once only for a BYE from a party it saw in the dialog (the source of
	// an offer, an answer or the INVITE) and a CANCEL from the source of
	// its INVITE; it refuses a CANCEL from another source (ErrRefused) and
	// deletes for any other BYE or CANCEL only when the far side answers
	// it 2xx (Action Confirm). Set it only where the edge cannot see the
	// parties' sources (behind a load balancer that hides them).
	AnySource bool
	// Logger receives failures (Warn) and actions (Debug); nil discards.
	Logger *slog.Logger
}

// Stats are a Relay's counters.
type Stats struct {
	Offers  uint64 `json:"offers"`  // offers sent to rtpengine
	Answers uint64 `json:"answers"` // answers sent to rtpengine
	Deletes uint64 `json:"deletes"` // deletes sent to rtpengine
	Public  uint64 `json:"public"`  // SDP messages left alone: calls between public peers, or a hop that did not offer
	Failed  uint64 `json:"failed"`  // relay needed but unavailable: forwarded with signalling only
	Skipped uint64 `json:"skipped"` // unusable messages (no Call-ID)
	Forged  uint64 `json:"forged"`  // responses with the edge's Via mark but not its signature: refused
	Kept    uint64 `json:"kept"`    // failure answers to a re-INVITE: the established call's session kept
	// Refused are BYEs and CANCELs not trusted at once: from a source the
	// edge did not see in the dialog (Action Confirm), or a CANCEL from
	// another source than its INVITE (Action Refused).
	Refused   uint64 `json:"refused"`
	Confirmed uint64 `json:"confirmed"` // deletes on the far side's 2xx to a BYE or CANCEL the edge did not trust at once
}

// Relay drives an rtpengine set from an edge proxy's messages.
type Relay struct {
	set    *rtpengine.Set
	self   netip.AddrPort
	alt    netip.AddrPort // the other family's address (Config.AltSelf)
	opts   rtpengine.Options
	all    bool
	any    bool // Config.AnySource
	log    *slog.Logger
	signer *sipmsg.Signer // HMAC-SHA256 under Config.Key

	parties parties // the sources seen in each call (BYE and CANCEL checks)

	offers, answers, deletes, public, failed, skipped, forged, kept, refused, confirms atomic.Uint64
}

var (
	// ErrConfig is returned by New for a Config without Set or Self.
	ErrConfig = errors.New("sipedge: bad config")
	// ErrForged is returned by Response for a response whose top Via
	// carries the edge's mark without the edge's signature: it does not
	// answer a request the edge forwarded (a forgery, or a mark from
	// before a restart with a random Key). The relay does nothing for it.
	ErrForged = errors.New("sipedge: response with a forged Via mark")
)

// New returns a relay for cfg.
func New(cfg Config) (*Relay, error) {
	if cfg.Set == nil || !cfg.Self.IsValid() {
		return nil, fmt.Errorf("%w: Set and Self are required", ErrConfig)
	}
	r := &Relay{set: cfg.Set, self: cfg.Self, alt: cfg.AltSelf, log: cfg.Logger, all: cfg.All, any: cfg.AnySource}
	r.signer = sipmsg.NewSigner(cfg.Key)
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	// symmetric RTP (learning the endpoint from its media) is rtpengine's
	// default; version 10 warns about the old "symmetric" flag
	r.opts = rtpengine.Options{ReplaceOrigin: true, ReplaceSessionConnection: true,
		ICE: cfg.ICE, Family: cfg.Family}
	if r.opts.ICE == "" {
		r.opts.ICE = rtpengine.ICERemove
	}
	return r, nil
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	return Stats{Offers: r.offers.Load(), Answers: r.answers.Load(), Deletes: r.deletes.Load(),
		Public: r.public.Load(), Failed: r.failed.Load(), Skipped: r.skipped.Load(), Forged: r.forged.Load(), Kept: r.kept.Load(),
		Refused: r.refused.Load(), Confirmed: r.confirms.Load()}
}

// Request does the relay's part for a request the edge received from src
// and is about to forward; senderNAT says the proxy's NAT test fired for
// it; family, when not "", is the address family of the party that reads
// the relay's SDP (rtpengine's "address family": an edge that forwards an
// IPv6 UA's offer to an IPv4 UA asks for IPv4, and rtpengine bridges). When a party is behind NAT, INVITE and UPDATE with SDP are offers,
// an INVITE without SDP is a late offer (Action Late: mark the Via with
// AppendViaMark, the response carries the offer) and an ACK with SDP
// answers it; BYE and CANCEL delete the call's session when they come from
// a party of the call (see Config.AnySource: else Action Confirm, or
// Refused with ErrRefused for a CANCEL not to be forwarded). A request whose
// Via shows an edge on the way took part is left alone (an INVITE or
// UPDATE gets Action Leg: its Via mark makes the answerer a party of the
// call, for the BYE check). The relay's
// SDP, if any, is appended to sdp and returned as body (nil: keep the
// body). A failure of the relay is logged, counted and returned with
// Action Failed; the request should then go on unchanged.
func (r *Relay) Request(ctx context.Context, sdp []byte, m *sipmsg.Message, src netip.AddrPort, senderNAT bool, family rtpengine.Family) (body []byte, act Action, err error) {
	switch {
	case anyMark(m) && (m.IsMethod("INVITE") || m.IsMethod("UPDATE")):
		// an edge on the way took care of it; the answer to this hop comes
		// from a party of the call (the Leg mark lets the edge know it)
		return nil, Leg, nil
	case anyMark(m):
		return nil, None, nil // an edge on the way took care of it
	case m.IsMethod("BYE") || m.IsMethod("CANCEL"):
		return r.teardown(ctx, m, src, senderNAT)
	case m.IsMethod("INVITE") || m.IsMethod("UPDATE"):
		if !senderNAT && !r.all && !r.marked(m) && !crosses(m, family) {
			return r.publicCall(m)
		}
		if !m.HasSDP() {
			if m.IsMethod("INVITE") {
				r.saw(m, src)
				return nil, Late, nil
			}
			return nil, None, nil
		}
		return r.sdp(ctx, sdp, m, src, senderNAT, rtpengine.Offer, false, family)
	case m.IsMethod("ACK") && m.HasSDP() && (senderNAT || r.all || r.marked(m)):
		// an ACK's SDP answers the late offer made by the 2xx: the
		// offerer is the callee, so the tags swap
		return r.sdp(ctx, sdp, m, src, senderNAT, rtpengine.Answer, true, family)
	}
	return nil, None, nil
}

// crosses reports whether m's SDP is in another family than family (the
// reader's): a call between public peers of two families needs the relay
// too, to bridge them.
func crosses(m *sipmsg.Message, family rtpengine.Family) bool {
	if family == "" || !m.HasSDP() {
		return false
	}
	ap, err := sdp.MediaAddr(m.Body(), "audio")
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().Is4() != (family == rtpengine.IPv4)
}

// marked is Marked at either of the edge's addresses.
func (r *Relay) marked(m *sipmsg.Message) bool {
	return Marked(m, r.self) || r.alt.IsValid() && Marked(m, r.alt)
}

// Response does the relay's part for a response the edge received from
// src, before it removes its own Via; senderNAT says the NAT test fired for
// it (a NATed UA answering). The edge acts only on a response to a request
// it forwarded: one whose top Via names the edge and carries the mark it
// signed (AppendViaMark). Then a 1xx or 2xx with SDP to an INVITE or
// UPDATE it offered is the answer, or the offer when the request was a late
// offer, and a failure answer (300 and above) to the dialog-creating
// INVITE deletes the call's session; a failure answer to a re-INVITE (491
// Request Pending, 488 Not Acceptable Here, ...) leaves the established
// call's session alone (RFC 3261 §14.1: the session in effect before a
// failed re-INVITE stays) and is counted in Stats.Kept. A response with the edge's mark but not its signature is
// refused: Action None, ErrForged, logged and counted in Stats.Forged (it
// must not move the media of a call to another address, nor end it).
// Results and family as for Request.
func (r *Relay) Response(ctx context.Context, sdp []byte, m *sipmsg.Message, src netip.AddrPort, senderNAT bool, family rtpengine.Family) (body []byte, act Action, err error) {
	method := m.CSeqMethod()
	invite := string(method) == "INVITE"
	end := string(method) == "BYE" || string(method) == "CANCEL"
	if !invite && !end && string(method) != "UPDATE" {
		return nil, None, nil
	}
	code := m.StatusCode()
	if code <= 100 || code >= 300 && !invite {
		return nil, None, nil
	}
	kind, err := r.ownMark(m)
	switch {
	case err != nil:
		r.forged.Add(1)
		callID, _ := m.Get(sipmsg.HdrCallID)
		r.log.Warn("sipedge: response with a forged Via mark refused", "status", code, "call", string(callID), "from", src)
		return nil, None, fmt.Errorf("%w: %d from %s", err, code, src)
	case end && kind == markEnd:
		return r.confirmed(ctx, m)
	case end || kind == markEnd || kind == markEnded:
		return nil, None, nil // not an INVITE's or UPDATE's mark, or not the BYE's to confirm
	case kind == "" && code >= 300:
		return nil, None, nil
	case kind == "": // not a transaction the relay took part in
		return r.publicCall(m)
	case kind == markLeg:
		if code < 300 {
			r.saw(m, src) // the callee, when an edge on the way relayed the call
		}
		return nil, None, nil
	}
	switch {
	case code >= 300 && creates(kind):
		return r.del(ctx, m, senderNAT)
	case code >= 300:
		// a re-INVITE failed (491, 488, ...): the session in effect before
		// it stays (RFC 3261 §14.1), and so does the call's media
		r.kept.Add(1)
		callID, _ := m.Get(sipmsg.HdrCallID)
		r.log.Debug("sipedge: failed re-INVITE; the call's media left alone", "status", code, "call", string(callID))
		return nil, None, nil
	case offers(kind):
		return r.sdp(ctx, sdp, m, src, senderNAT, rtpengine.Answer, false, family)
	default: // markLate, markRelate
		return r.sdp(ctx, sdp, m, src, senderNAT, rtpengine.Offer, true, family)
	}
}

// ownMark returns the kind of mark (markOffer or markLate) on the top Via
// of response m when that Via is the edge's and the edge signed the mark
// for m's transaction; "" when the relay took no part in it (another
// hop's Via, no mark, an ACK's answer mark); ErrForged for the edge's Via
// with a mark the edge did not sign for m.
func (r *Relay) ownMark(m *sipmsg.Message) (string, error) {
	mk, mine := topMark(m, r.self)
	if !mine && r.alt.IsValid() {
		mk, mine = topMark(m, r.alt)
	}
	if !mine || mk.kind == "" || mk.kind == markAnswer {
		return "", nil
	}
	if !r.verify(mk, m) {
		return "", ErrForged
	}
	return mk.kind, nil
}

func (r *Relay) publicCall(m *sipmsg.Message) ([]byte, Action, error) {
	if m.HasSDP() {
		r.public.Add(1)
	}
	return nil, None, nil
}

// sdp sends the message's SDP to the relay as cmd; swap exchanges the
// From and To tags (the callee offered: a late offer and its answer).
func (r *Relay) sdp(ctx context.Context, sdp []byte, m *sipmsg.Message, src netip.AddrPort, senderNAT bool, cmd rtpengine.Command, swap bool, family rtpengine.Family) ([]byte, Action, error) {
	if !m.HasSDP() {
		return nil, None, nil
	}
	body := m.Body()
	req := rtpengine.Request{Command: cmd, SDP: body, Options: r.opts}
	if family != "" {
		req.Options.Family = family
	}
	if !r.ids(m, &req) {
		return nil, None, nil
	}
	if swap {
		req.FromTag, req.ToTag = req.ToTag, req.FromTag
	}
	if senderNAT {
		req.Options.SIPSource, req.Source = true, src.Addr()
	} else {
		req.Options.TrustAddress = true
	}
	rep, err := r.set.Do(ctx, sdp, &req)
	if err != nil {
		return r.fail(cmd, req.CallID, err)
	}
	act := Offered
	if cmd == rtpengine.Answer {
		act = Answered
		r.answers.Add(1)
	} else {
		r.offers.Add(1)
	}
	r.saw(m, src)
	r.log.Debug("sipedge: relay engaged", "command", cmd, "call", string(req.CallID), "nat", senderNAT)
	return rep.SDP, act, nil
}

// del deletes the call's relay session when the call has one or a party is
// behind NAT.
func (r *Relay) del(ctx context.Context, m *sipmsg.Message, senderNAT bool) ([]byte, Action, error) {
	req := rtpengine.Request{Command: rtpengine.Delete}
	if !r.ids(m, &req) {
		return nil, None, nil
	}
	if !r.set.Has(req.CallID) && !senderNAT && !r.all && !r.marked(m) {
		return nil, None, nil
	}
	req.ToTag = nil // the whole call, not one dialog
	if _, err := r.set.Do(ctx, nil, &req); err != nil {
		return r.fail(rtpengine.Delete, req.CallID, err)
	}
	r.deletes.Add(1)
	r.parties.forget(req.CallID)
	r.log.Debug("sipedge: relay session deleted", "call", string(req.CallID))
	return nil, Deleted, nil
}

// saw records src as a party of m's call: the source of its INVITE when m
// is the dialog-creating INVITE, else one an offer or answer came from.
func (r *Relay) saw(m *sipmsg.Message, src netip.AddrPort) {
	callID, ok := m.Get(sipmsg.HdrCallID)
	if !ok || len(callID) == 0 || !src.IsValid() {
		return
	}
	_, inDialog := m.Tag(sipmsg.HdrTo)
	r.parties.saw(r.set, callID, src, m.IsRequest() && m.IsMethod("INVITE") && !inDialog)
}

func (r *Relay) fail(cmd rtpengine.Command, callID []byte, err error) ([]byte, Action, error) {
	r.failed.Add(1)
	r.log.Warn("sipedge: media relay unavailable; signalling only", "command", cmd, "call", string(callID), "err", err)
	return nil, Failed, fmt.Errorf("sipedge: %s: %w", cmd, err)
}

// ids fills the Call-ID and the From and To tags.
func (r *Relay) ids(m *sipmsg.Message, req *rtpengine.Request) bool {
	callID, ok := m.Get(sipmsg.HdrCallID)
	if !ok || len(callID) == 0 {
		r.skipped.Add(1)
		return false
	}
	req.CallID = callID
	req.FromTag, _ = m.Tag(sipmsg.HdrFrom)
	req.ToTag, _ = m.Tag(sipmsg.HdrTo)
	return true
}

// Replace returns a body rewriter (for sipmsg.Fix.Body) that puts body in
// place of the message's body.
func Replace(body []byte) sipmsg.BodyRewriter {
	return func(dst, _ []byte) ([]byte, error) { return append(dst, body...), nil }
}
