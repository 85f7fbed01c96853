package sipedge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/sipmsg"
)

// ErrRefused is returned by Request for a CANCEL that does not come from
// the source of the INVITE it cancels: the edge must not forward it (it
// would end a call set-up another host made) and the relay deletes
// nothing.
var ErrRefused = errors.New("sipedge: CANCEL from another source than its INVITE")

// maxParties is how many sources a call's record keeps (the caller, the
// callee, and room for a party whose address changed).
const maxParties = 4

// minSweep is the number of calls the party table holds before it first
// drops those the rtpengine.Set no longer holds.
const minSweep = 1024

// party is what the edge saw of one call's parties: the source of its
// dialog-creating INVITE and the sources offers and answers came from.
type party struct {
	invite netip.AddrPort
	seen   [maxParties]netip.AddrPort
	next   uint8 // where the next new source goes (the oldest is replaced)
}

// has reports whether src sent an offer, an answer or the INVITE.
func (p *party) has(src netip.AddrPort) bool {
	if !src.IsValid() {
		return false
	}
	if src == p.invite {
		return true
	}
	for _, s := range p.seen {
		if s.IsValid() && s == src {
			return true
		}
	}
	return false
}

// parties is the table of the calls' parties. Its entries live as long as
// the rtpengine.Set holds the call (the Set's CallTTL bounds them): the
// table drops the others whenever it has doubled since the last sweep.
type parties struct {
	mu    sync.Mutex
	calls map[string]party
	sweep int // size at which the next sweep runs
}

// saw records that src sent the call's INVITE (invite) or an offer or
// answer.
func (t *parties) saw(set *rtpengine.Set, callID []byte, src netip.AddrPort, invite bool) {
	src = callerconn.Unmap(src)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls == nil {
		t.calls, t.sweep = make(map[string]party), minSweep
	}
	p := t.calls[string(callID)]
	switch {
	case invite:
		p.invite = src
	case !p.has(src):
		p.seen[p.next] = src
		p.next = (p.next + 1) % maxParties
	}
	t.calls[string(callID)] = p
	if len(t.calls) >= t.sweep {
		for k := range t.calls {
			if !set.Has([]byte(k)) && k != string(callID) {
				delete(t.calls, k)
			}
		}
		t.sweep = max(2*len(t.calls), minSweep)
	}
}

// lookup returns the call's record.
func (t *parties) lookup(callID []byte) (party, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.calls[string(callID)]
	return p, ok
}

// forget drops the call's record.
func (t *parties) forget(callID []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.calls, string(callID))
}

// teardown is the relay's part for a BYE or CANCEL from src: the call's
// session is deleted at once when the request comes from a party the edge
// saw in the dialog (a CANCEL: from the source of its INVITE), or with
// Config.AnySource. A CANCEL from another source than its INVITE is
// refused (ErrRefused: not to be forwarded); any other BYE or CANCEL is
// not trusted at once (Confirm: mark the Via with AppendViaMark, and the
// far side's 2xx deletes the session). Both are logged and counted in
// Stats.Refused.
func (r *Relay) teardown(ctx context.Context, m *sipmsg.Message, src netip.AddrPort, senderNAT bool) ([]byte, Action, error) {
	callID, ok := m.Get(sipmsg.HdrCallID)
	if !ok || len(callID) == 0 {
		r.skipped.Add(1)
		return nil, None, nil
	}
	if !r.set.Has(callID) && !senderNAT && !r.all && !r.marked(m) {
		return nil, None, nil // no session to delete
	}
	if r.any {
		return r.del(ctx, m, senderNAT)
	}
	cancel := m.IsMethod("CANCEL")
	p, known := r.parties.lookup(callID)
	src = callerconn.Unmap(src)
	switch {
	case cancel && known && p.invite.IsValid() && src == p.invite:
		return r.del(ctx, m, senderNAT)
	case !cancel && known && p.has(src):
		return r.del(ctx, m, senderNAT)
	case cancel && known && p.invite.IsValid():
		r.refused.Add(1)
		r.log.Warn("sipedge: CANCEL from another source than its INVITE refused", "call", string(callID), "from", src, "invite from", p.invite)
		return nil, Refused, fmt.Errorf("%w: %s (the INVITE came from %s)", ErrRefused, src, p.invite)
	}
	r.refused.Add(1)
	r.log.Warn("sipedge: BYE or CANCEL from a source not seen in the dialog; the session is deleted when the far side answers 2xx",
		"method", string(m.Method()), "call", string(callID), "from", src)
	return nil, Confirm, nil
}

// confirmed deletes the call's session on a 2xx to a BYE or CANCEL the
// edge marked (Confirm): the far side ended the call.
func (r *Relay) confirmed(ctx context.Context, m *sipmsg.Message) ([]byte, Action, error) {
	body, act, err := r.del(ctx, m, true) // the edge marked it: there is a session
	if act == Deleted {
		r.confirms.Add(1)
	}
	return body, act, err
}
