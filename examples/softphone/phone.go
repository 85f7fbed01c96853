package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/agent/turnrelay"
	"github.com/sipnat/sipnat/outbound"
	"github.com/sipnat/sipnat/sipmsg"
	"github.com/sipnat/sipnat/turn"
)

// Config configures a Phone.
type Config struct {
	Registrar   netip.AddrPort   // the registrar (and outbound proxy)
	Domain      string           // the AoR's domain; "" means the registrar's address
	User        string           // the AoR's user part
	Password    string           // digest password; "" answers no challenge
	STUN        []netip.AddrPort // STUN servers for NAT discovery
	Disable     agent.Mechanism  // NAT traversal mechanisms not to use
	Expires     time.Duration    // registration lifetime asked for; 0 means 300 s
	LifetimeMax time.Duration    // measure the binding lifetime up to this; 0 skips it (keep-alive interval assumed)
	Gateway     netip.Addr       // the router to ask for port mappings (IPv6: firewall pinholes); zero means the default gateway
	NAT64       netip.Prefix     // the NAT64 prefix of an IPv6-only network (discovery.DetectNAT64), see agent.Config.NAT64
	TURN        turn.Config      // the media relay (Server, Username, Password) where nothing direct works; zero Server: none
	ForceRelay  bool             // relay media even where a direct path works
	// TURNTransport is how the relay is reached: zero is UDP, or TCP when
	// UDP is blocked; sipmsg.UDP, TCP or TLS insist (TURN.Server is then
	// the server's port for it). TLS checks the server's certificate
	// against TURNRootCAs (nil: the system's) for TURNServerName ("": the
	// server's address).
	TURNTransport  sipmsg.Transport
	TURNRootCAs    *x509.CertPool
	TURNServerName string
	// TURNKeepAlive is how often a relay reached over TCP or TLS is kept
	// open: below the NAT's idle-TCP timeout; zero means the agent's 25 s.
	TURNKeepAlive time.Duration
	// Stream, when set, carries SIP over TCP or TLS (an RFC 5626 flow);
	// nil: SIP over the UDP socket.
	Stream *StreamConfig
	// Dual, when set, makes a dual-stack phone: its sockets of the other
	// family. The agent registers over IPv6 when that path works, and
	// picks each call's media family (agent.ChooseFamily).
	Dual *DualConfig

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
	Dialed      int    `json:"dialed"`        // calls placed and answered (Dial)
	Ended       int    `json:"ended"`         // calls ended by BYE
	RTPIn       int64  `json:"rtp_in"`        // RTP packets received in calls
	RTPOut      int64  `json:"rtp_out"`       // RTP packets sent in calls
	KeepAlives  uint64 `json:"keepalives"`
	Reregisters int    `json:"reregisters"` // registrations redone because the public address changed
	// TargetRefreshes counts re-INVITEs sent in a call because its flow was
	// formed again (a new Contact).
	TargetRefreshes int `json:"target_refreshes"`
	// Families is the media family of each call, in order ("IPv4", "IPv6").
	Families []string `json:"families,omitempty"`
	// StreamLifetime is how long the NATs keep an idle SIP connection, as
	// measured with StreamConfig.LifetimeMax (zero otherwise).
	StreamLifetime outbound.StreamLifetime `json:"stream_lifetime,omitzero"`
}

// Phone is a small SIP user agent that registers and answers calls with
// two-way RTP; the NAT part is sipnat's agent. It owns no socket: the
// caller hands it one UDP socket for SIP (and STUN) and one for RTP.
type Phone struct {
	cfg  Config
	legs []*leg              // one per address family: the given sockets first, then Config.Dual's
	sig  atomic.Pointer[leg] // the leg SIP goes over (the registration's family)
	dual *agent.DualStack    // with Config.Dual: the agents of both families
	flow *outbound.Flow      // SIP over TCP/TLS; nil: UDP
	log  *slog.Logger

	mu        sync.Mutex
	txs       map[string]chan []byte
	public    netip.AddrPort // where the registrar saw the last REGISTER come from
	regCallID string
	regTag    string
	cseq      uint32
	stats     Stats
	call      *call
	// a target refresh of the call is running; refreshAgain: why another
	// was asked for meanwhile ("" none)
	refreshing   bool
	refreshAgain string
	rereg        chan string
	regDone      chan struct{}
	regOnce      sync.Once
	rtpIn        atomic.Int64
	rtpOut       atomic.Int64
}

// NewPhone returns a phone on the given sockets. Both must be UDP sockets
// bound to a specific local address.
func NewPhone(sip, rtp net.PacketConn, cfg Config) (*Phone, error) {
	if cfg.Expires == 0 {
		cfg.Expires = 300 * time.Second
	}
	if cfg.Domain == "" {
		cfg.Domain = cfg.Registrar.Addr().String()
		if cfg.Registrar.Addr().Is6() {
			cfg.Domain = "[" + cfg.Domain + "]" // an IPv6 reference (RFC 3261 section 25.1)
		}
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Phone{
		cfg: cfg, log: log,
		txs: map[string]chan []byte{}, rereg: make(chan string, 1), regDone: make(chan struct{}),
		regCallID: randHex(8) + "@sipnat", regTag: randHex(4),
	}
	if err := p.newLegs(sip, rtp); err != nil {
		return nil, err
	}
	if cfg.Stream != nil {
		var err error
		if p.flow, err = p.newFlow(cfg.Stream); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ErrSocket: NewPhone was given a socket that is not bound to a specific
// address.
var ErrSocket = errors.New("softphone: socket not bound to a specific address")

// localAddr is the address socket c is bound to; NewPhone refuses a
// socket bound to no specific address.
func localAddr(c net.PacketConn) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("%s: %w", c.LocalAddr(), ErrSocket)
	}
	return ap, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (p *Phone) printf(format string, args ...any) { fmt.Fprintf(p.cfg.Out, format+"\n", args...) }

// Plan returns what the NAT agent decided (nil before Run decided).
func (p *Phone) Plan() *agent.Plan { return p.sl().nat.Plan() }

// Stats returns a snapshot of the counters.
func (p *Phone) Stats() Stats {
	p.mu.Lock()
	s := p.stats
	s.Families = append([]string(nil), s.Families...)
	p.mu.Unlock()
	s.RTPIn, s.RTPOut = p.rtpIn.Load(), p.rtpOut.Load()
	s.KeepAlives = p.sl().nat.KeepAlives()
	return s
}

// Registered is closed after the first successful registration.
func (p *Phone) Registered() <-chan struct{} { return p.regDone }

// Run has the agent decide the NAT plan, registers, and answers calls
// until ctx ends; then it unregisters and the agent removes its mappings.
func (p *Phone) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range p.legs {
		wg.Add(2)
		go func() { defer wg.Done(); p.serveSIP(ctx, l) }()
		go func() { defer wg.Done(); p.serveRTP(ctx, l) }()
	}
	defer wg.Wait()
	defer cancel()
	defer p.closeAgents()

	plan, err := p.startAgents(ctx)
	if err != nil {
		return err
	}
	if p.flow != nil {
		if plan.NATErr != "" {
			media := "media may not flow"
			if plan.TwoWayAudio.Works {
				media = "media goes through the TURN relay over " + plan.Relay.Transport.String()
			}
			p.printf("UDP looks blocked (%s): signalling goes over the %s flow, %s", plan.NATErr, p.flow.Transport(), media)
		}
		return p.runFlow(ctx)
	}
	if !plan.IncomingCalls.Works && plan.NATErr != "" {
		return errors.New("softphone: UDP is blocked; nothing to do")
	}
	if err := p.register(ctx, p.cfg.Expires); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	return p.keepRegistered(ctx, func() bool { return true })
}

// keepRegistered refreshes the registration at half its lifetime and
// registers again when the agent says the Contact moved, until ctx ends;
// then it unregisters if canUnregister says the way to the registrar is up.
func (p *Phone) keepRegistered(ctx context.Context, canUnregister func() bool) error {
	refresh := time.NewTimer(p.cfg.Expires / 2)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			if canUnregister() {
				uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = p.register(uctx, 0)
				ucancel()
			}
			return nil
		case why := <-p.rereg:
			p.printf("re-registering: %s", why)
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

// natEvent is what the agent reports: a new Contact, a failed or a
// recovered flow means registering again; a new Contact or media address
// during a call, a re-INVITE in it (requestRefresh).
func (p *Phone) natEvent(e agent.Event) {
	p.printf("nat: %s", e)
	switch e.Kind {
	case agent.PublicAddressChanged:
		p.mu.Lock()
		p.stats.Reregisters++
		p.mu.Unlock()
		p.requestReregister(e.Reason)
		if p.flow == nil { // over UDP the call's Contact is this address
			p.requestRefresh("the SIP socket's new public address")
		}
	case agent.MediaAddressChanged:
		p.requestRefresh(fmt.Sprintf("media socket %d's new public address", e.Media))
	case agent.FlowFailed, agent.FlowRecovered:
		// a failed flow is recovered by registering again (RFC 5626 §4.5);
		// the registrar may also have said it lost the flow (430)
		p.requestReregister(e.Reason)
	}
}

func (p *Phone) requestReregister(why string) {
	select {
	case p.rereg <- why:
	default:
	}
}

func (p *Phone) aor() string { return "sip:" + p.cfg.User + "@" + p.cfg.Domain }

// serveSIP is leg l's SIP socket's read loop (agent.ServeSIP): the agent
// takes STUN answers, CRLF keep-alive noise and the answers to its
// keep-alives, SIP is dispatched here.
func (p *Phone) serveSIP(ctx context.Context, l *leg) {
	var m sipmsg.Message
	err := l.nat.ServeSIP(ctx, func(b []byte, src netip.AddrPort) {
		if err := m.Parse(b); err != nil {
			p.log.Debug("unparsable SIP", "from", src, "err", err)
			return
		}
		if m.IsRequest() {
			p.handleRequest(&m, src)
			return
		}
		p.handleResponse(&m)
	})
	if err != nil && !errors.Is(err, net.ErrClosed) {
		p.printf("%v", err)
	}
}

func (p *Phone) handleResponse(m *sipmsg.Message) {
	via, err := m.ParseTopVia()
	if err != nil || !via.HasBranch {
		return
	}
	p.mu.Lock()
	ch := p.txs[string(via.Branch.Value.In(m.Bytes()))]
	p.mu.Unlock()
	if ch != nil && m.StatusCode() >= 200 {
		select {
		case ch <- append([]byte(nil), m.Bytes()...):
		default:
		}
	}
}

// dial is Config.DialContext, or else a dialer without the system's TCP
// keep-alives: only the SIP flow's and the relay's own keep-alives may
// keep the NAT's state.
func (p *Phone) dial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.cfg.DialContext != nil {
		return p.cfg.DialContext
	}
	d := net.Dialer{KeepAlive: -1}
	return d.DialContext
}

// newRelay is the agent's relay for the -turn flags, nil without a server:
// TURN from the RTP socket over UDP, or over a TCP or TLS connection of
// its own (dialled like the SIP flow's, TLS checked against TURNRootCAs).
func (p *Phone) newRelay() agent.RelayMaker {
	c := p.cfg.TURN
	if !c.Server.IsValid() {
		return nil
	}
	dial := p.dial()
	c.DialContext = dial
	if p.cfg.TURNTransport == sipmsg.TLS {
		name := p.cfg.TURNServerName
		if name == "" {
			name = c.Server.Addr().String()
		}
		conf := &tls.Config{RootCAs: p.cfg.TURNRootCAs, ServerName: name}
		c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, conf)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
				return nil, fmt.Errorf("TLS to the TURN server %s: %w", addr, err)
			}
			return tc, nil
		}
	}
	return turnrelay.New(c)
}
