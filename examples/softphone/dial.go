package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/sipnat/sipnat/sdp"
	"github.com/sipnat/sipnat/sipmsg"
)

// Dial calls target (a SIP URI) through the registrar as outbound proxy,
// sends RTP for talk while counting what comes back, and hangs up. It is
// the outgoing half of the example: one call at a time, the offer is the
// same SDP the phone answers with (its public media address from the NAT
// agent), the peer's SDP is read through the agent's AppendPeerSDP (its
// synthesised IPv6 addresses behind a NAT64), and the INVITE is not
// authenticated.
func (p *Phone) Dial(ctx context.Context, target string, talk time.Duration) error {
	sig := p.sl()
	contact := sig.nat.Contact()
	id, tag := randHex(8)+"@sipnat", randHex(4)
	media := p.chooseLeg("outgoing call to "+target, nil, p.callTarget(ctx, target))
	offer := p.offer(media)
	_, raw, err := p.transact(ctx, func(branch string) []byte {
		var b []byte
		b = append(b, "INVITE "+target+" SIP/2.0\r\n"...)
		b = append(b, "Via: SIP/2.0/UDP "+contact.String()+";branch="+branch+";rport\r\n"...)
		b = append(b, "Max-Forwards: 70\r\nFrom: <"+p.aor()+">;tag="+tag+"\r\nTo: <"+target+">\r\n"...)
		b = append(b, "Call-ID: "+id+"\r\nCSeq: 1 INVITE\r\nContact: "...)
		b = sipmsg.AppendContactValue(b, p.cfg.User, contact, sipmsg.UDP, "")
		b = append(b, "\r\nContent-Type: application/sdp\r\nUser-Agent: sipnat-softphone\r\nContent-Length: "+strconv.Itoa(len(offer))+"\r\n\r\n"...)
		return append(b, offer...)
	})
	if err != nil {
		return fmt.Errorf("dial %s: %w", target, err)
	}
	var resp sipmsg.Message
	if err := resp.Parse(raw); err != nil {
		return fmt.Errorf("dial %s: answer: %w", target, err)
	}
	if code := resp.StatusCode(); code != 200 {
		return fmt.Errorf("dial %s: %d %s", target, code, resp.Reason())
	}
	peerSDP, err := media.nat.AppendPeerSDP(nil, resp.Body())
	if err != nil {
		return fmt.Errorf("dial %s: %w", target, err)
	}
	remote, err := sdp.MediaAddr(peerSDP, "audio")
	if err != nil {
		return fmt.Errorf("dial %s: %w", target, err)
	}
	d := uacDialog(&resp, target, "<"+p.aor()+">;tag="+tag, 1)
	via := "SIP/2.0/UDP " + contact.String()
	ack := d.request("ACK", 1, via, "z9hG4bK-"+randHex(8), nil, nil)
	if _, err := sig.sip.WriteTo(ack, net.UDPAddrFromAddrPort(sig.registrar)); err != nil {
		return fmt.Errorf("dial %s: ACK: %w", target, err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &call{id: id, toTag: tag, acked: make(chan struct{}), remote: remote, media: media, stop: cancel, done: make(chan struct{}), dialog: d}
	p.mu.Lock()
	p.call = c
	p.stats.Dialed++
	p.mu.Unlock()
	p.printf("outgoing call %s to %s answered; our media %s, theirs %s", id, target, media.nat.Plan().Media[0].Public, remote)
	go p.sendRTP(cctx, c)
	select {
	case <-ctx.Done():
	case <-time.After(talk):
	}
	p.mu.Lock()
	d.cseq++ // the dialog's next CSeq (after any re-INVITE in it)
	bye := *d
	p.mu.Unlock()
	_, raw, err = p.transact(context.WithoutCancel(ctx), func(branch string) []byte { return bye.request("BYE", bye.cseq, via, branch, nil, nil) })
	p.hangup(id)
	if err != nil {
		return fmt.Errorf("dial %s: BYE: %w", target, err)
	}
	if err := resp.Parse(raw); err != nil || resp.StatusCode() != 200 {
		return fmt.Errorf("dial %s: BYE answered %d", target, resp.StatusCode())
	}
	return nil
}
