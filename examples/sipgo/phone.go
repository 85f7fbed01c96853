package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/sdp"
)

// Config configures a Phone.
type Config struct {
	Registrar   netip.AddrPort
	User        string
	Password    string
	STUN        []netip.AddrPort
	LifetimeMax time.Duration
	Gateway     netip.Addr
	// DialContext and ListenPacket make the agent's gateway and probe
	// sockets (a test's network namespace); nil uses the net package.
	DialContext  func(ctx context.Context, network, addr string) (net.Conn, error)
	ListenPacket func(ctx context.Context, network, addr string) (net.PacketConn, error)
	Out          io.Writer // what the phone says for a person; nil discards it
}

// Phone is sipgo's user agent with sipnat's agent doing the NAT part: the
// agent reads first on the SIP socket sipgo serves (agentConn), decides
// the Contact, Via sent-by and SDP addresses, keeps the flow open and says
// when to register again. sipgo does SIP; this file is the glue.
type Phone struct {
	cfg      Config
	sipConn  net.PacketConn
	rtp      net.PacketConn
	local    netip.AddrPort
	nat      *agent.Agent
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	rereg    chan string
	regDone  chan struct{}
	regOnce  sync.Once
	mu       sync.Mutex
	call     *call
	callID   string
	cseq     uint32
	Calls    atomic.Int32
	Ended    atomic.Int32
	RTPIn    atomic.Int64
	RTPOut   atomic.Int64
	Register atomic.Int32
}

type call struct {
	id     string
	remote netip.AddrPort
	stop   context.CancelFunc
	done   chan struct{}
}

// agentConn is the SIP socket as sipgo reads it: every packet goes to the
// agent first, and sipgo sees only what the agent leaves (SIP).
type agentConn struct {
	net.PacketConn
	a *agent.Agent
}

func (c agentConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, from, err
		}
		if u, ok := from.(*net.UDPAddr); ok && c.a.HandlePacket(b[:n], u.AddrPort()) {
			continue
		}
		return n, from, nil
	}
}

// NewPhone returns a phone on the caller's SIP and RTP sockets.
func NewPhone(sipConn, rtp net.PacketConn, cfg Config) (*Phone, error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	p := &Phone{cfg: cfg, sipConn: sipConn, rtp: rtp, rereg: make(chan string, 1), regDone: make(chan struct{}),
		callID: fmt.Sprintf("sipgo-%d@sipnat", time.Now().UnixNano())}
	p.local = sipConn.LocalAddr().(*net.UDPAddr).AddrPort()
	a, err := agent.New(agent.Config{SIP: sipConn, Media: []net.PacketConn{rtp}, STUN: cfg.STUN, Registrar: cfg.Registrar,
		AOR: "sip:" + cfg.User + "@" + cfg.Registrar.Addr().String(), LifetimeMax: cfg.LifetimeMax, Gateway: cfg.Gateway,
		DialContext: cfg.DialContext, ListenPacket: cfg.ListenPacket, UserAgent: "sipnat-sipgo",
		OnEvent: func(e agent.Event) {
			p.printf("nat: %s", e)
			if e.Kind == agent.PublicAddressChanged || e.Kind == agent.FlowRecovered {
				select {
				case p.rereg <- e.Reason:
				default:
				}
			}
		}})
	if err != nil {
		return nil, err
	}
	p.nat = a
	if p.ua, err = sipgo.NewUA(sipgo.WithUserAgent(cfg.User)); err != nil {
		return nil, err
	}
	if p.srv, err = sipgo.NewServer(p.ua); err != nil {
		return nil, err
	}
	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	p.srv.OnBye(p.onBye)
	p.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	return p, nil
}

func (p *Phone) printf(format string, args ...any) { fmt.Fprintf(p.cfg.Out, format+"\n", args...) }

// Plan is the agent's plan (nil before Run decided).
func (p *Phone) Plan() *agent.Plan { return p.nat.Plan() }

// Registered is closed after the first registration.
func (p *Phone) Registered() <-chan struct{} { return p.regDone }

// Run serves SIP with sipgo, has the agent decide, registers, and answers
// calls until ctx ends.
func (p *Phone) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go func() { defer wg.Done(); _ = p.srv.ServeUDP(agentConn{p.sipConn, p.nat}) }()
	go func() { defer wg.Done(); p.serveRTP(ctx) }()
	defer p.sipConn.Close() // ends sipgo's reader: the socket is the phone's to close
	defer p.rtp.Close()
	defer p.ua.Close()
	defer p.nat.Close()

	plan, err := p.nat.Start(ctx)
	if err != nil {
		return err
	}
	p.printf("plan: %s", plan)
	if err := p.register(ctx, 300); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = p.register(uctx, 0)
			ucancel()
			p.hangup()
			return nil
		case why := <-p.rereg:
			p.printf("re-registering: %s", why)
			if err := p.register(ctx, 300); err != nil && ctx.Err() == nil {
				p.printf("re-register failed: %v", err)
			}
		}
	}
}

// register sends REGISTER with the agent's Contact as Contact and Via
// sent-by, answers the digest challenge, and feeds the answer back.
func (p *Phone) register(ctx context.Context, expires int) error {
	contact := p.nat.Contact()
	client, err := sipgo.NewClient(p.ua, sipgo.WithClientHostname(contact.Addr().String()), sipgo.WithClientPort(int(contact.Port())),
		sipgo.WithClientConnectionAddr(p.local.String()), sipgo.WithClientNAT())
	if err != nil {
		return err
	}
	domain := p.cfg.Registrar.Addr().String()
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: domain})
	req.SetDestination(p.cfg.Registrar.String())
	aor := sip.Uri{User: p.cfg.User, Host: domain}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	callID := sip.CallIDHeader(p.callID)
	req.AppendHeader(&callID)
	p.mu.Lock()
	p.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: p.cseq, MethodName: sip.REGISTER})
	p.mu.Unlock()
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: p.cfg.User, Host: contact.Addr().String(), Port: int(contact.Port())}})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res, err := client.Do(ctx, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		p.mu.Lock()
		p.cseq++ // the digest retry uses the next CSeq
		p.mu.Unlock()
		res, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.cfg.User, Password: p.cfg.Password})
	}
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("registrar says %d %s", res.StatusCode, res.Reason)
	}
	if expires == 0 {
		return nil
	}
	p.Register.Add(1)
	p.printf("registered with Contact %s", contact)
	p.regOnce.Do(func() { close(p.regDone) })
	// The request as sent (sipgo mutates req for the digest retry) and the
	// answer: the agent checks for an ALG and follows rport.
	if rep, err := p.nat.ObserveRegister([]byte(req.String()), []byte(res.String()), p.cfg.Registrar); err == nil && rep.Tampered() {
		p.printf("WARNING: a SIP ALG rewrote the REGISTER (%s)", rep.Signs)
	}
	return nil
}

// onInvite answers at once with the agent's SDP and starts the media.
func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	remote, err := sdp.MediaAddr(req.Body(), "audio")
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	local := p.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	body := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=sipnat sipgo\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
		local.Addr(), local.Addr(), local.Port())
	sdp, _ := p.nat.AppendSDP(nil, []byte(body))
	res := sip.NewResponseFromRequest(req, 200, "OK", sdp)
	contact := p.nat.Contact()
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: p.cfg.User, Host: contact.Addr().String(), Port: int(contact.Port())}})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	id := req.CallID().Value()
	p.mu.Lock()
	if p.call == nil {
		ctx, cancel := context.WithCancel(context.Background())
		c := &call{id: id, remote: remote, stop: cancel, done: make(chan struct{})}
		p.call = c
		p.Calls.Add(1)
		go p.sendRTP(ctx, c)
		p.printf("incoming call %s answered; contact %s, theirs %s", id, contact, remote)
	}
	p.mu.Unlock()
	_ = tx.Respond(res)
}

func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	p.hangup()
	p.Ended.Add(1)
}

func (p *Phone) hangup() {
	p.mu.Lock()
	c := p.call
	p.call = nil
	p.mu.Unlock()
	if c != nil {
		c.stop()
		<-c.done
		p.printf("call %s ended: RTP in %d, out %d", c.id, p.RTPIn.Load(), p.RTPOut.Load())
	}
}

// sendRTP sends PCMU silence every 20 ms through the agent: from the
// socket it receives on (symmetric RTP, which opens the NAT's filter for
// the caller), or through the relay when the plan needs one.
func (p *Phone) sendRTP(ctx context.Context, c *call) {
	defer close(c.done)
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	for i := 12; i < len(pkt); i++ {
		pkt[i] = 0xff
	}
	if err := p.nat.MediaPeer(ctx, 0, c.remote); err != nil { // a relay, when the plan has one, lets the peer in
		p.printf("relay: %v", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(0); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
		if err := p.nat.SendMedia(0, pkt, c.remote); err == nil { // direct, or through the relay
			p.RTPOut.Add(1)
		}
	}
}

// serveRTP counts RTP during a call; the agent takes its STUN answers and
// the relay's messages and unwraps relayed media (agent.ServeMedia). It
// ends when ctx does or Run closes the socket.
func (p *Phone) serveRTP(ctx context.Context) {
	err := p.nat.ServeMedia(ctx, 0, func(b []byte, _ netip.AddrPort) {
		p.mu.Lock()
		inCall := p.call != nil
		p.mu.Unlock()
		if inCall && len(b) >= 12 && b[0]>>6 == 2 {
			p.RTPIn.Add(1)
		}
	})
	if err != nil && !errors.Is(err, net.ErrClosed) {
		p.printf("%v", err)
	}
}
