package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sipmsg"
)

// Config configures a Phone.
type Config struct {
	Registrar   netip.AddrPort   // the registrar (and outbound proxy)
	Domain      string           // the AoR's domain; "" means the registrar's address
	User        string           // the AoR's user part
	Password    string           // digest password; "" answers no challenge
	STUN        []netip.AddrPort // STUN servers for NAT discovery
	Allow       Mechanisms       // which NAT traversal mechanisms to use
	Expires     time.Duration    // registration lifetime asked for; 0 means 300 s
	LifetimeMax time.Duration    // measure the binding lifetime up to this; 0 skips it (25 s keep-alives)
	Gateway     netip.Addr       // the router to ask for port mappings; zero means the default gateway

	// DialContext and ListenPacket, when set, make the sockets of the
	// gateway requests and of the extra NAT-discovery probes (tests run the
	// phone inside a network namespace with them).
	DialContext  func(ctx context.Context, network, addr string) (net.Conn, error)
	ListenPacket func(ctx context.Context, network, addr string) (net.PacketConn, error)

	Out    io.Writer    // decisions and call reports for a person; nil discards them
	Logger *slog.Logger // debug logs; nil discards them
}

// Stats counts what the phone did; read it with Phone.Stats.
type Stats struct {
	Registered  bool   `json:"registered"`
	Registers   int    `json:"registers"`
	ALG         string `json:"alg,omitempty"` // what the ALG detector saw, "" when nothing
	Calls       int    `json:"calls"`         // INVITEs answered
	Ended       int    `json:"ended"`         // calls ended by BYE
	RTPIn       int64  `json:"rtp_in"`        // RTP packets received in calls
	RTPOut      int64  `json:"rtp_out"`       // RTP packets sent in calls
	KeepAlives  uint64 `json:"keepalives"`
	Reregisters int    `json:"reregisters"` // registrations redone because the public address changed
}

// Phone is a small SIP user agent that registers, keeps its NAT binding
// open and answers calls with two-way RTP. It owns no socket: the caller
// hands it one UDP socket for SIP (and STUN) and one for RTP.
type Phone struct {
	cfg      Config
	sip, rtp net.PacketConn
	sipLocal netip.AddrPort
	rtpLocal netip.AddrPort
	sipSTUN  *nat.Client
	rtpSTUN  *nat.Client
	mapper   *discovery.Mapper
	log      *slog.Logger

	strategy *Strategy
	keeper   *keepalive.Keeper
	kaBranch string

	mu        sync.Mutex
	contact   netip.AddrPort // advertised in Contact and Via sent-by
	txs       map[string]chan []byte
	regCallID string
	regTag    string
	cseq      uint32
	stats     Stats
	call      *call
	rereg     chan string
	regDone   chan struct{}
	regOnce   sync.Once
	rtpIn     atomic.Int64
	rtpOut    atomic.Int64
}

// NewPhone returns a phone on the given sockets. Both must be UDP sockets
// bound to a specific local address.
func NewPhone(sip, rtp net.PacketConn, cfg Config) *Phone {
	if cfg.Expires == 0 {
		cfg.Expires = 300 * time.Second
	}
	if cfg.Domain == "" {
		cfg.Domain = cfg.Registrar.Addr().String()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Phone{
		cfg: cfg, sip: sip, rtp: rtp, log: log,
		sipLocal: addrPortOf(sip.LocalAddr()), rtpLocal: addrPortOf(rtp.LocalAddr()),
		txs: map[string]chan []byte{}, rereg: make(chan string, 1), regDone: make(chan struct{}),
		regCallID: randHex(8) + "@sipnat", regTag: randHex(4), kaBranch: "z9hG4bK-ka" + randHex(4),
	}
	p.sipSTUN = nat.NewClient(sip, nat.ClientConfig{CallerReads: true, Logger: log})
	p.rtpSTUN = nat.NewClient(rtp, nat.ClientConfig{CallerReads: true, Logger: log})
	return p
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (p *Phone) printf(format string, args ...any) { fmt.Fprintf(p.cfg.Out, format+"\n", args...) }

// extraSocket opens the extra probe sockets of NAT discovery next to the SIP
// socket (same address, any port).
func (p *Phone) extraSocket(ctx context.Context) (net.PacketConn, error) {
	addr := netip.AddrPortFrom(p.sipLocal.Addr(), 0).String()
	if p.cfg.ListenPacket != nil {
		return p.cfg.ListenPacket(ctx, "udp4", addr)
	}
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, "udp4", addr)
}

// Strategy returns what the phone decided (nil before Run decided).
func (p *Phone) Strategy() *Strategy {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.strategy
}

// Stats returns a snapshot of the counters.
func (p *Phone) Stats() Stats {
	p.mu.Lock()
	s, k := p.stats, p.keeper
	p.mu.Unlock()
	s.RTPIn, s.RTPOut = p.rtpIn.Load(), p.rtpOut.Load()
	if k != nil {
		s.KeepAlives = k.Sent()
	}
	return s
}

// Registered is closed after the first successful registration.
func (p *Phone) Registered() <-chan struct{} { return p.regDone }

// Run decides the NAT strategy, registers, keeps the binding open and
// answers calls until ctx ends; then it unregisters and removes mappings.
func (p *Phone) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.readSIP(ctx) }()
	go func() { defer wg.Done(); p.readRTP(ctx) }()
	defer wg.Wait()
	defer cancel()
	defer p.sipSTUN.Close()
	defer p.rtpSTUN.Close()

	s, err := p.decide(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.strategy, p.contact = s, s.Contact
	p.mu.Unlock()
	p.printf("strategy: %s", s)
	if p.mapper != nil {
		defer p.mapper.Close()
	}
	if !s.IncomingCalls && s.NAT == nil && len(p.cfg.STUN) > 0 {
		return errors.New("softphone: UDP is blocked; nothing to do")
	}

	if err := p.register(ctx, p.cfg.Expires); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if s.KeepAlive > 0 {
		k, err := p.startKeepalive(s)
		if err != nil {
			return err
		}
		defer k.Stop()
	}
	if s.MediaFrom == "STUN" && s.NAT != nil {
		mk, err := p.startMediaKeepalive(s)
		if err != nil {
			return err
		}
		defer mk.Stop()
		p.printf("media keep-alive: STUN from the RTP socket to %s every %v", s.NAT.Server, mk.Interval())
	}
	refresh := time.NewTimer(p.cfg.Expires / 2)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = p.register(uctx, 0)
			ucancel()
			return nil
		case why := <-p.rereg:
			p.printf("re-registering: %s", why)
			p.refreshMedia(ctx)
			if err := p.register(ctx, p.cfg.Expires); err != nil && ctx.Err() == nil {
				p.printf("re-register failed: %v", err)
			}
		case <-refresh.C:
			if err := p.register(ctx, p.cfg.Expires); err != nil && ctx.Err() == nil {
				p.printf("registration refresh failed: %v", err)
			}
			refresh.Reset(p.cfg.Expires / 2)
		}
	}
}

// startKeepalive keeps the flow to the registrar open with OPTIONS, whose
// answers also tell the public address (rport) the registrar sees.
func (p *Phone) startKeepalive(s *Strategy) (*keepalive.Keeper, error) {
	p.mu.Lock()
	sentBy := p.contact
	p.mu.Unlock()
	timing := keepalive.Timing{Interval: s.KeepAlive}
	if s.NAT != nil && s.NAT.Lifetime > 0 {
		timing = keepalive.Timing{Lifetime: s.NAT.Lifetime}
	}
	k, err := keepalive.New(keepalive.Config{
		Kind: keepalive.Options,
		Send: func(b []byte) error {
			_, err := p.sip.WriteTo(b, net.UDPAddrFromAddrPort(p.cfg.Registrar))
			return err
		},
		Request: keepalive.OptionsBuilder(sipmsg.OptionsRequest{
			RequestURI: "sip:" + p.cfg.Domain, From: p.aor(), SentBy: sentBy, Branch: p.kaBranch,
			CallID: randHex(8) + "@sipnat-ka", UserAgent: "sipnat-softphone",
		}),
		Timing: timing, Timeout: 2 * time.Second, MaxMisses: 2, Logger: p.log,
		OnEvent: func(e keepalive.Event) {
			p.printf("keep-alive: %s", e)
			if e.Kind == keepalive.Recovered {
				p.requestReregister("the flow to the registrar recovered")
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("keep-alive: %w", err)
	}
	p.mu.Lock()
	p.keeper = k
	p.mu.Unlock()
	p.printf("keep-alive: OPTIONS to %s every %v (jittered 80-100%%)", p.cfg.Registrar, k.Interval())
	k.Start()
	return k, nil
}

// refreshMedia asks STUN again for the RTP socket's public address when the
// NAT may have moved it (the SIP mapping changed): the SDP of the next call
// must name the new one.
func (p *Phone) refreshMedia(ctx context.Context) {
	p.mu.Lock()
	s := p.strategy
	p.mu.Unlock()
	if s == nil || s.MediaFrom != "STUN" || s.NAT == nil {
		return
	}
	bctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	mapped, err := p.rtpSTUN.Binding(bctx, s.NAT.Server)
	cancel()
	if err != nil {
		p.printf("STUN on the RTP socket failed: %v", err)
		return
	}
	p.setMedia(mapped)
}

func (p *Phone) setMedia(mapped netip.AddrPort) {
	p.mu.Lock()
	prev := p.strategy.Media
	p.strategy.Media = mapped
	p.mu.Unlock()
	if prev != mapped {
		p.printf("media address moved: %s -> %s", prev, mapped)
	}
}

// startMediaKeepalive keeps the RTP socket's NAT binding open between calls
// with STUN (RFC 5626 §4.4.2 style), so the address the next SDP names still
// leads to the phone; a changed mapping updates it.
func (p *Phone) startMediaKeepalive(s *Strategy) (*keepalive.Keeper, error) {
	timing := keepalive.Timing{Interval: s.KeepAlive}
	if s.NAT.Lifetime > 0 {
		timing = keepalive.Timing{Lifetime: s.NAT.Lifetime}
	}
	k, err := keepalive.New(keepalive.Config{
		Kind: keepalive.STUN, Binder: p.rtpSTUN, Server: s.NAT.Server, Timing: timing,
		Timeout: 2 * time.Second, Logger: p.log,
		OnEvent: func(e keepalive.Event) {
			if e.Kind == keepalive.MappingChanged {
				p.setMedia(e.Mapping)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("media keep-alive: %w", err)
	}
	k.Start()
	return k, nil
}

func (p *Phone) requestReregister(why string) {
	select {
	case p.rereg <- why:
	default:
	}
}

func (p *Phone) aor() string { return "sip:" + p.cfg.User + "@" + p.cfg.Domain }

// readSIP is the SIP socket's read loop: STUN answers go to the STUN
// client, CRLF keep-alive answers are dropped, SIP is dispatched.
func (p *Phone) readSIP(ctx context.Context) {
	stopOnDone(ctx, p.sip)
	buf := make([]byte, 65535)
	var m sipmsg.Message
	for {
		n, from, err := p.sip.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := buf[:n]
		src := addrPortOf(from)
		if nat.IsSTUN(b) {
			p.sipSTUN.HandlePacket(b, src)
			continue
		}
		if len(strings.Trim(string(b), "\r\n")) == 0 {
			continue // CRLF keep-alive or pong
		}
		if err := m.Parse(b); err != nil {
			p.log.Debug("unparsable SIP", "from", src, "err", err)
			continue
		}
		if m.IsRequest() {
			p.handleRequest(&m, src)
			continue
		}
		p.handleResponse(&m)
	}
}

// stopOnDone unblocks the socket's reads when ctx ends, without closing the
// caller's socket.
func stopOnDone(ctx context.Context, c net.PacketConn) {
	go func() {
		<-ctx.Done()
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}()
}

func (p *Phone) handleResponse(m *sipmsg.Message) {
	via, err := m.ParseTopVia()
	if err != nil || !via.HasBranch {
		return
	}
	branch := string(via.Branch.Value.In(m.Bytes()))
	if strings.HasPrefix(branch, p.kaBranch) {
		p.mu.Lock()
		k := p.keeper
		p.mu.Unlock()
		if k != nil {
			k.Answer()
		}
		p.learn(m, "a keep-alive answer")
		return
	}
	p.mu.Lock()
	ch := p.txs[branch]
	p.mu.Unlock()
	if ch != nil && m.StatusCode() >= 200 {
		select {
		case ch <- append([]byte(nil), m.Bytes()...):
		default:
		}
	}
}

// learn follows the public address the registrar reports in received and
// rport (RFC 3581), as PJSIP's allow_contact_rewrite does.
func (p *Phone) learn(m *sipmsg.Message, what string) {
	pub, ok := m.PublicAddr()
	p.mu.Lock()
	s := p.strategy
	changed := ok && s != nil && s.Learn && pub != p.contact
	prev := p.contact
	if changed {
		p.contact = pub
		p.stats.Reregisters++
	}
	p.mu.Unlock()
	if changed {
		p.requestReregister(fmt.Sprintf("%s says the registrar sees us at %s, not %s", what, pub, prev))
	}
}
