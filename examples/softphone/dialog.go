package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/sipnat/sipnat/sipmsg"
)

// dialog is what the phone keeps of a call's dialog to send requests in it
// (RFC 3261 §12): the peer's Contact as remote target, the route set, and
// the From and To values with their tags.
type dialog struct {
	callID string
	local  string   // our end, with our tag: From of our requests
	remote string   // the peer's end, with its tag: To of our requests
	target string   // the remote target: the URI of the peer's Contact
	route  []string // the route set
	cseq   int      // our last CSeq in the dialog
}

// uasDialog is the dialog an INVITE the phone answered (with toTag) sets
// up: the route set is its Record-Route in order (RFC 3261 §12.1.1).
func uasDialog(m *sipmsg.Message, toTag string) *dialog {
	from, _ := m.Get(sipmsg.HdrFrom)
	to, _ := m.Get(sipmsg.HdrTo)
	local := string(to)
	if !strings.Contains(local, ";tag=") {
		local += ";tag=" + toTag
	}
	return &dialog{callID: callID(m), local: local, remote: string(from), target: contactURI(m),
		route: headerLines(m, sipmsg.HdrRecordRoute)}
}

// uacDialog is the dialog the 2xx resp to the phone's INVITE to target sets
// up: the route set is its Record-Route in reverse (RFC 3261 §12.1.2).
func uacDialog(resp *sipmsg.Message, target, local string, cseq int) *dialog {
	to, _ := resp.Get(sipmsg.HdrTo)
	d := &dialog{callID: callID(resp), local: local, remote: string(to), target: target, cseq: cseq}
	if t := contactURI(resp); t != "" {
		d.target = t
	}
	rr := headerLines(resp, sipmsg.HdrRecordRoute)
	for i := len(rr) - 1; i >= 0; i-- {
		d.route = append(d.route, rr[i])
	}
	return d
}

// contactURI returns the URI of m's Contact, "" when it has none.
func contactURI(m *sipmsg.Message) string {
	c, ok := m.Get(sipmsg.HdrContact)
	if !ok {
		return ""
	}
	v := string(c)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v, _, _ = strings.Cut(v[i+1:], ">")
	} else {
		v, _, _ = strings.Cut(v, ";")
	}
	return strings.TrimSpace(v)
}

// request builds a request of the dialog: via is the Via value without its
// branch ("SIP/2.0/UDP host:port"), contact the Contact value (nil: none),
// body an SDP (nil: none).
func (d *dialog) request(method string, cseq int, via, branch string, contact, body []byte) []byte {
	var b []byte
	b = append(b, method+" "+d.target+" SIP/2.0\r\n"...)
	b = append(b, "Via: "+via+";branch="+branch+";rport\r\n"...)
	if len(d.route) > 0 {
		b = append(b, "Route: "+strings.Join(d.route, ", ")+"\r\n"...)
	}
	b = append(b, "Max-Forwards: 70\r\nFrom: "+d.local+"\r\nTo: "+d.remote+"\r\n"...)
	b = append(b, "Call-ID: "+d.callID+"\r\nCSeq: "+strconv.Itoa(cseq)+" "+method+"\r\n"...)
	if contact != nil {
		b = append(b, "Contact: "...)
		b = append(b, contact...)
		b = append(b, "\r\n"...)
	}
	if body != nil {
		b = append(b, "Content-Type: application/sdp\r\n"...)
	}
	b = append(b, "User-Agent: sipnat-softphone\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"...)
	return append(b, body...)
}

// requestRefresh has the call in progress sent a target refresh
// (refreshTarget) because of why; refreshes asked for while one runs are
// sent once after it, so that the peer sees one re-INVITE at a time.
func (p *Phone) requestRefresh(why string) {
	p.mu.Lock()
	if p.refreshing {
		p.refreshAgain = why
		p.mu.Unlock()
		return
	}
	p.refreshing = true
	p.mu.Unlock()
	go func() {
		for {
			p.refreshTarget(context.Background(), why)
			p.mu.Lock()
			why, p.refreshAgain = p.refreshAgain, ""
			if why == "" {
				p.refreshing = false
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
		}
	}()
}

// refreshTarget sends a re-INVITE (a target refresh, RFC 3261 §12.2) in
// the current call's dialog with the phone's Contact and SDP as they are
// now, and ACKs its 2xx; why says what moved. A flow that was formed again
// after failing is a new connection from a new NAT port, and over UDP a
// router that rebooted maps the SIP and media sockets to new public ports
// (the agent reports PublicAddressChanged and MediaAddressChanged): the
// dialog's remote target (the Contact the peer and the registrar hold from
// the call's set-up) and the SDP name the old ones, which are gone, so the
// peer's media and its next request in the dialog (a BYE) would not reach
// the phone until they are refreshed. The route set stays (it cannot
// change in a dialog); the registrar reaches the new Contact.
func (p *Phone) refreshTarget(ctx context.Context, why string) {
	p.mu.Lock()
	c, public := p.call, p.public
	var d *dialog
	var dc dialog // a copy to build from: a refresh may run while another ends
	if c != nil && c.dialog != nil {
		d = c.dialog
		d.cseq++
		dc = *d
	}
	p.mu.Unlock()
	if d == nil {
		return
	}
	cseq := dc.cseq
	sentBy := p.sl().nat.Contact()
	if p.flow != nil {
		sentBy = p.flow.Local()
	} else {
		public = sentBy // over UDP the agent's Contact is the public address
	}
	via := "SIP/2.0/" + p.transport().String() + " " + sentBy.String()
	contact := sipmsg.AppendContactValue(nil, p.cfg.User, public, p.transport(), "")
	_, raw, err := p.transact(ctx, func(branch string) []byte {
		return dc.request("INVITE", cseq, via, branch, contact, p.offer(c.media))
	})
	var resp sipmsg.Message
	if err == nil {
		err = resp.Parse(raw)
	}
	if err != nil {
		p.printf("call %s: re-INVITE (%s) with Contact %s failed: %v", dc.callID, why, public, err)
		return
	}
	code := resp.StatusCode()
	if code >= 200 && code < 300 {
		if t := contactURI(&resp); t != "" {
			dc.target = t // a target refresh answer updates ours too (RFC 3261 §12.2.1.2)
			p.mu.Lock()
			d.target = t
			p.mu.Unlock()
		}
		_ = p.sendSIP(dc.request("ACK", cseq, via, "z9hG4bK-"+randHex(8), nil, nil), p.sl().registrar)
	}
	p.mu.Lock()
	p.stats.TargetRefreshes++
	p.mu.Unlock()
	p.printf("call %s: re-INVITE (%s) with Contact %s answered %d %s", dc.callID, why, public, code, resp.Reason())
}
