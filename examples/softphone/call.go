package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/sdp"
	"github.com/sipnat/sipnat/sipmsg"
)

// call is the one call the phone handles at a time.
type call struct {
	id      string
	toTag   string
	ok      []byte // the 200 OK, retransmitted until ACK
	okTo    netip.AddrPort
	acked   chan struct{}
	ackOnce sync.Once
	remote  netip.AddrPort // where RTP goes: the address in the caller's SDP
	media   *leg           // the leg (address family) of the call's media
	stop    context.CancelFunc
	done    chan struct{}
	dialog  *dialog // to send requests in the call (p.mu guards its fields)
}

func (p *Phone) handleRequest(m *sipmsg.Message, from netip.AddrPort) {
	switch {
	case m.IsMethod("INVITE"):
		p.answer(m, from)
	case m.IsMethod("ACK"):
		p.mu.Lock()
		c := p.call
		p.mu.Unlock()
		if c != nil && c.id == callID(m) {
			c.ackOnce.Do(func() { close(c.acked) })
		}
	case m.IsMethod("BYE"):
		p.reply(m, from, 200, "OK", "", nil)
		p.hangup(callID(m))
	case m.IsMethod("CANCEL"):
		p.reply(m, from, 200, "OK", "", nil)
	default: // OPTIONS pings from the registrar, and anything else
		p.reply(m, from, 200, "OK", "", nil)
	}
}

func callID(m *sipmsg.Message) string {
	v, _ := m.Get(sipmsg.HdrCallID)
	return string(v)
}

// answer accepts an INVITE at once with our SDP and starts the media.
func (p *Phone) answer(m *sipmsg.Message, from netip.AddrPort) {
	id := callID(m)
	p.mu.Lock()
	c := p.call
	if c != nil && c.id != id {
		p.mu.Unlock()
		p.reply(m, from, 486, "Busy Here", "", nil)
		return
	}
	p.mu.Unlock()
	if c != nil { // a retransmitted INVITE or a re-INVITE: same answer
		p.reply(m, from, 200, "OK", c.toTag, p.offer(c.media))
		return
	}
	media := p.chooseLeg("incoming call "+callID(m), m.Body(), agent.CallTarget{})
	peerSDP, err := media.nat.AppendPeerSDP(nil, m.Body()) // IPv4 peers behind a NAT64 at their synthesised address
	if err != nil {
		p.log.Debug("peer SDP", "err", err)
	}
	remote, err := sdp.MediaAddr(peerSDP, "audio")
	if err != nil {
		p.printf("incoming call %s: %v", id, err)
		p.reply(m, from, 488, "Not Acceptable Here", "", nil)
		return
	}

	ctx, cancel := context.WithCancel(context.Background())
	toTag := randHex(4)
	c = &call{id: id, toTag: toTag, okTo: from, acked: make(chan struct{}), remote: remote, media: media, stop: cancel, done: make(chan struct{}),
		dialog: uasDialog(m, toTag)}
	c.ok = p.reply(m, from, 200, "OK", c.toTag, p.offer(media))
	p.mu.Lock()
	p.call = c
	p.stats.Calls++
	p.mu.Unlock()
	p.printf("incoming call %s answered; contact %s, our media %s, theirs %s", id, p.sl().nat.Contact(), media.rtpLocal, remote)
	go p.retransmitOK(ctx, c)
	go p.sendRTP(ctx, c)
}

// retransmitOK resends the 200 OK until the ACK arrives (RFC 3261 §13.3.1.4).
func (p *Phone) retransmitOK(ctx context.Context, c *call) {
	rto := 500 * time.Millisecond
	for i := 0; i < 7; i++ {
		t := time.NewTimer(rto)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.acked:
			t.Stop()
			return
		case <-t.C:
			_ = p.sendSIP(c.ok, c.okTo)
			rto = min(2*rto, 4*time.Second)
		}
	}
}

func (p *Phone) hangup(id string) {
	p.mu.Lock()
	c := p.call
	if c == nil || c.id != id {
		p.mu.Unlock()
		return
	}
	p.call = nil
	p.stats.Ended++
	p.mu.Unlock()
	c.stop()
	<-c.done
	p.printf("call %s ended: RTP in %d, out %d", id, p.rtpIn.Load(), p.rtpOut.Load())
}

// offer is our SDP on leg l's media socket: written with the local
// addresses as any SIP stack would, then rewritten by l's agent to the
// public media address.
func (p *Phone) offer(l *leg) []byte {
	local := l.rtpLocal
	family := "IP4"
	if local.Addr().Is6() {
		family = "IP6"
	}
	body := fmt.Sprintf("v=0\r\no=- 4242 4242 IN %s %s\r\ns=sipnat softphone\r\nc=IN %s %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
		family, local.Addr(), family, local.Addr(), local.Port())
	out, err := l.nat.AppendSDP(nil, []byte(body))
	if err != nil {
		p.log.Debug("sdp rewrite", "err", err)
	}
	return out
}

// reply sends a response to request m back to where it came from (RFC 3581:
// the source address and port), and returns it.
func (p *Phone) reply(m *sipmsg.Message, to netip.AddrPort, code int, reason, toTag string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, v := range headerLines(m, sipmsg.HdrVia) {
		b.WriteString("Via: " + v + "\r\n")
	}
	if code >= 200 && code < 300 {
		for _, v := range headerLines(m, sipmsg.HdrRecordRoute) {
			b.WriteString("Record-Route: " + v + "\r\n")
		}
	}
	f, _ := m.Get(sipmsg.HdrFrom)
	t, _ := m.Get(sipmsg.HdrTo)
	cs, _ := m.Get(sipmsg.HdrCSeq)
	b.WriteString("From: " + string(f) + "\r\n")
	b.WriteString("To: " + string(t))
	if toTag != "" && !strings.Contains(string(t), ";tag=") {
		b.WriteString(";tag=" + toTag)
	}
	b.WriteString("\r\nCall-ID: " + callID(m) + "\r\nCSeq: " + string(cs) + "\r\n")
	if m.IsMethod("INVITE") && code < 300 {
		contact := p.sl().nat.Contact()
		if p.flow != nil {
			// the registrar reaches the flow's public end over the connection
			p.mu.Lock()
			contact = p.public
			p.mu.Unlock()
		}
		b.WriteString("Contact: ")
		b.Write(sipmsg.AppendContactValue(nil, p.cfg.User, contact, p.transport(), ""))
		b.WriteString("\r\n")
	}
	b.WriteString("User-Agent: sipnat-softphone\r\n")
	if body != nil {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	out := b.Bytes()
	_ = p.sendSIP(out, to)
	return out
}

// sendRTP sends a 20 ms PCMU packet until the call ends, from the socket it
// receives on (symmetric RTP, RFC 4961: this is what opens the NAT's filter
// for the caller's packets), to the address in the caller's SDP.
func (p *Phone) sendRTP(ctx context.Context, c *call) {
	defer close(c.done)
	ssrc := binary.BigEndian.Uint32([]byte(randHex(2)))
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0 // V=2, PT 0 (PCMU)
	for i := 12; i < len(pkt); i++ {
		pkt[i] = 0xff // μ-law silence
	}
	binary.BigEndian.PutUint32(pkt[8:], ssrc)
	if err := c.media.nat.MediaPeer(ctx, 0, c.remote); err != nil {
		p.printf("relay: %v", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], ts)
		seq++
		ts += 160
		if err := c.media.nat.SendMedia(0, pkt, c.remote); err == nil {
			p.rtpOut.Add(1)
		} else {
			p.printf("RTP send: %v", err)
		}
	}
}

// serveRTP is leg l's RTP socket's read loop (agent.ServeMedia): the
// agent takes STUN answers and the relay's own messages and unwraps
// relayed media; media goes to media.
func (p *Phone) serveRTP(ctx context.Context, l *leg) {
	err := l.nat.ServeMedia(ctx, 0, func(b []byte, _ netip.AddrPort) { p.media(l, b) })
	if err != nil && !errors.Is(err, net.ErrClosed) {
		p.printf("%v", err)
	}
}

// media takes what arrived for leg l's RTP socket: from its read loop, or
// from a relay reached over TCP or TLS (agent.Config.OnRelayedMedia). RTP
// during a call whose media is on l is counted.
func (p *Phone) media(l *leg, b []byte) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return
	}
	p.mu.Lock()
	c := p.call
	p.mu.Unlock()
	if c != nil && c.media == l {
		p.rtpIn.Add(1)
	}
}
