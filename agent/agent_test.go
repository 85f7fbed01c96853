package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/binding"
	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/internal/callerconn"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sipmsg"
)

func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func local(c net.PacketConn) netip.AddrPort { return callerconn.AddrPortOf(c.LocalAddr()) }

// startSTUN serves STUN (nat.Server) on a loopback socket until the test
// ends and returns its address.
func startSTUN(t *testing.T) netip.AddrPort {
	conn := listen(t)
	srv, err := nat.NewServer(nat.ServerConfig{Primary: conn})
	require.NoError(t, err)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(context.Background()) }()
	t.Cleanup(func() { srv.Close(); <-served })
	return local(conn)
}

// fakeRegistrar answers STUN and OPTIONS like kamailio with nathelper,
// reporting in received/rport the public port it is told to.
type fakeRegistrar struct {
	conn    *net.UDPConn
	rport   atomic.Uint32
	options atomic.Int32
	seen    atomic.Int32 // keep-alives (STUN and OPTIONS) read, answered or not
	status  atomic.Int32 // the OPTIONS answer's status; 0: 200
	drop    atomic.Int32 // the next keep-alives it drops unanswered; -1: all
	done    chan struct{}
}

// dropped reports whether the keep-alive just read goes unanswered.
func (r *fakeRegistrar) dropped() bool {
	r.seen.Add(1)
	for {
		n := r.drop.Load()
		if n == 0 {
			return false
		}
		if n < 0 || r.drop.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func startRegistrar(t *testing.T) *fakeRegistrar {
	r := &fakeRegistrar{conn: listen(t), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 65535)
		for {
			n, from, err := r.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			b := buf[:n]
			if nat.IsSTUN(b) {
				if r.dropped() {
					continue
				}
				if out, err := nat.AppendBindingResponse(nil, b, from, local(r.conn)); err == nil {
					_, _ = r.conn.WriteToUDPAddrPort(out, from)
				}
				continue
			}
			if !strings.HasPrefix(string(b), "OPTIONS ") {
				continue
			}
			r.options.Add(1)
			if r.dropped() {
				continue
			}
			_, _ = r.conn.WriteToUDPAddrPort(r.answer(b), from)
		}
	}()
	t.Cleanup(func() { r.conn.Close(); <-r.done })
	return r
}

// answer builds a 200 to request b with received/rport in the top Via.
func (r *fakeRegistrar) answer(b []byte) []byte {
	var m sipmsg.Message
	if m.Parse(b) != nil {
		return nil
	}
	via, _ := m.Get(sipmsg.HdrVia)
	callID, _ := m.Get(sipmsg.HdrCallID)
	cseq, _ := m.Get(sipmsg.HdrCSeq)
	v := strings.Replace(string(via), ";rport", fmt.Sprintf(";received=127.0.0.1;rport=%d", r.rport.Load()), 1)
	status := "200 OK"
	if c := r.status.Load(); c != 0 {
		status = fmt.Sprintf("%d Answer", c)
	}
	return []byte("SIP/2.0 " + status + "\r\nVia: " + v + "\r\nCall-ID: " + string(callID) + "\r\nCSeq: " + string(cseq) + "\r\nContent-Length: 0\r\n\r\n")
}

// readLoop is a UA's SIP read loop, the agent's ServeSIP: what the agent
// leaves goes to sip, when not nil. It ends with the test.
func readLoop(t *testing.T, a *Agent, sip chan<- []byte) {
	serve(t, func(ctx context.Context) error {
		return a.ServeSIP(ctx, func(b []byte, _ netip.AddrPort) {
			if sip != nil {
				select {
				case sip <- append([]byte(nil), b...):
				default:
				}
			}
		})
	})
}

// mediaLoop is a UA's RTP read loop, the agent's ServeMedia.
func mediaLoop(t *testing.T, a *Agent) {
	serve(t, func(ctx context.Context) error { return a.ServeMedia(ctx, 0, nil) })
}

// serve runs one of the agent's read loops until the test ends; the
// socket may have been closed by then.
func serve(t *testing.T, run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("read loop: %v", err)
		}
	})
}

func TestStartWithoutReadLoop(t *testing.T) {
	t.Parallel()
	reg := startRegistrar(t)
	a, err := New(Config{SIP: listen(t), Registrar: local(reg.conn)})
	require.NoError(t, err)
	defer a.Close()
	start := time.Now()
	_, err = a.Start(context.Background())
	require.ErrorIs(t, err, nat.ErrSharedSocket)
	require.Contains(t, err.Error(), "does not hand STUN packets to HandlePacket")
	require.Less(t, time.Since(start), 5*time.Second)
	_, err = a.Start(context.Background())
	require.ErrorIs(t, err, ErrStarted)
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	_, err := New(Config{})
	require.ErrorIs(t, err, ErrConfig)
	_, err = New(Config{SIP: listen(t)})
	require.ErrorContains(t, err, "no registrar")
	_, err = New(Config{SIP: listen(t), Registrar: netip.MustParseAddrPort("127.0.0.1:5060"), Media: []net.PacketConn{nil}})
	require.ErrorContains(t, err, "media socket 0 is nil")
}

// TestStartLoopback: on loopback there is no NAT; the plan says so and
// starts no keep-alive; the demultiplexer leaves SIP to the stack.
func TestStartLoopback(t *testing.T) {
	t.Parallel()
	stun := startSTUN(t)
	reg := startRegistrar(t)
	sip, rtp := listen(t), listen(t)
	a, err := New(Config{SIP: sip, Media: []net.PacketConn{rtp}, STUN: []netip.AddrPort{stun}, Registrar: local(reg.conn), Disable: PortMapping})
	require.NoError(t, err)
	defer a.Close()
	readLoop(t, a, nil)
	p, err := a.Start(context.Background())
	require.NoError(t, err)
	require.Equal(t, Direct, p.Decision, p.String())
	require.Equal(t, local(sip), p.Contact)
	require.Equal(t, nat.None, p.NAT.Mapping)
	require.Zero(t, p.KeepAlive.Kind, "no NAT: no keep-alive")
	require.True(t, p.IncomingCalls.Works)
	require.True(t, p.TwoWayAudio.Works)
	require.Equal(t, FromLocal, p.Media[0].From)
	require.False(t, a.HandlePacket([]byte("INVITE sip:a@b SIP/2.0\r\n\r\n"), local(reg.conn)), "SIP is the stack's")
	require.True(t, a.HandlePacket([]byte("\r\n\r\n"), local(reg.conn)), "CRLF keep-alives are noise")
	pkt := []byte{0x80, 0, 0, 1}
	media, src := a.HandleMediaPacket(0, pkt, local(reg.conn))
	require.Equal(t, pkt, media, "RTP is the caller's")
	require.Equal(t, local(reg.conn), src)
	media, _ = a.HandleMediaPacket(5, []byte{0, 1}, local(reg.conn))
	require.Equal(t, []byte{0, 1}, media, "no such socket")
	body := []byte("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n")
	out, err := a.AppendSDP(nil, body)
	require.NoError(t, err)
	require.Equal(t, string(body), string(out), "no NAT: the SDP stays")
}

// TestKeepAliveAdapts: with the lifetime unknown the agent keeps the flow
// open every 25 s (assumed); when a keep-alive answer shows the NAT moved
// the flow, the interval is halved and the new Contact is reported.
func TestKeepAliveAdapts(t *testing.T) {
	t.Parallel()
	reg := startRegistrar(t)
	reg.rport.Store(5555)
	sip := listen(t)
	fake := clock.NewFake(time.Unix(1000, 0))
	var mu sync.Mutex
	var events []Event
	a, err := New(Config{SIP: sip, Registrar: local(reg.conn), Clock: fake, Disable: PortMapping,
		OnEvent: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	require.NoError(t, err)
	defer a.Close()
	readLoop(t, a, nil)

	// What Start decides behind an endpoint-independent NAT whose lifetime
	// an RFC 3489 server cannot measure (the lab test proves the probes).
	pub := netip.MustParseAddrPort("127.0.0.1:5555")
	res := &nat.Result{Public: pub, Mapping: nat.EndpointIndependent, Method: nat.MethodRFC3489}
	p := Decide(Observations{Local: local(sip), STUNServers: true, NAT: res, LifetimeAsked: time.Minute,
		Choice: discovery.Reconcile(discovery.Observations{Local: local(sip), STUN: pub})})
	require.True(t, p.KeepAlive.Assumed)
	require.Equal(t, binding.DefaultKeepAlive, p.KeepAlive.Interval)
	p.Contact, p.ContactFrom = pub, FromSTUN // loopback is not public: as a STUN Contact would be
	a.mu.Lock()
	a.plan, a.started = p, true
	a.mu.Unlock()
	require.NoError(t, a.startKeepAlives(p))

	// The REGISTER answer: the registrar sees the Contact.
	req := []byte("REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5555;branch=z9hG4bK1;rport\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@127.0.0.1:5555>\r\nContent-Length: 0\r\n\r\n")
	_, err = a.ObserveRegister(req, reg.answer(req), local(reg.conn))
	require.NoError(t, err)
	_, err = a.ObserveRegister(req, reg.answer(req), netip.MustParseAddrPort("127.0.0.9:5060"))
	require.ErrorContains(t, err, "not the registrar", "answers from elsewhere teach nothing")
	// a forged answer from the registrar's address, with a guessed branch
	reg.rport.Store(6666)
	forged := strings.Replace(string(reg.answer(req)), "z9hG4bK1", "z9hG4bKguess", 1)
	_, err = a.ObserveRegister(req, []byte(forged), local(reg.conn))
	require.ErrorContains(t, err, "another branch", "a forged answer teaches nothing")
	reg.rport.Store(5555)
	require.Equal(t, pub, a.Contact())

	// The NAT forgets the binding; the next keep-alive comes from 6666.
	reg.rport.Store(6666)
	next, ok := fake.NextIn() // the keep-alive, sent an interval less its wait after Start
	require.True(t, ok)
	require.LessOrEqual(t, next, binding.DefaultKeepAlive)
	fake.Advance(next)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no events; OPTIONS answered: %d", reg.options.Load())
		fake.Advance(10 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, KeepAliveShortened, events[0].Kind, "%v", events)
	require.Equal(t, (binding.DefaultKeepAlive / 2).Milliseconds(), events[0].Interval)
	require.Equal(t, PublicAddressChanged, events[1].Kind)
	require.Equal(t, netip.MustParseAddrPort("127.0.0.1:6666"), events[1].Address)
	require.Contains(t, events[1].Reason, "a keep-alive answer says the registrar sees us at 127.0.0.1:6666")
	require.Equal(t, events[1].Address, a.Contact())
	plan := a.Plan()
	require.Equal(t, FromRport, plan.ContactFrom)
	require.Equal(t, binding.DefaultKeepAlive/2, plan.KeepAlive.Interval)
	require.Contains(t, plan.KeepAlive.Reason, "shortened to 12.5s")
	require.GreaterOrEqual(t, a.KeepAlives(), uint64(1))
}

func TestAppendSDP(t *testing.T) {
	t.Parallel()
	reg := startRegistrar(t)
	a, err := New(Config{SIP: listen(t), Registrar: local(reg.conn)})
	require.NoError(t, err)
	defer a.Close()
	body := []byte("v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\nc=IN IP4 192.168.1.10\r\nm=audio 40000 RTP/AVP 0\r\n")
	out, err := a.AppendSDP(nil, body)
	require.NoError(t, err)
	require.Equal(t, string(body), string(out), "before Start the SDP stays")
	a.mu.Lock()
	a.plan = &Plan{Media: []MediaPlan{{Local: netip.MustParseAddrPort("192.168.1.10:40000"), Public: netip.MustParseAddrPort("203.0.113.1:41000"), From: FromSTUN}}}
	a.mu.Unlock()
	out, err = a.AppendSDP([]byte("x"), body)
	require.NoError(t, err)
	require.Equal(t, "xv=0\r\no=- 1 1 IN IP4 203.0.113.1\r\nc=IN IP4 203.0.113.1\r\nm=audio 41000 RTP/AVP 0\r\n", string(out))
	require.False(t, errors.Is(err, ErrClosed))
}

type packet struct {
	b    string
	from netip.AddrPort
}

// TestServe: ServeSIP and ServeMedia hand over what the agent leaves (not
// CRLF keep-alive noise), return nil when ctx ends and leave the sockets
// open without a deadline; ServeMedia refuses a socket the Config lacks.
func TestServe(t *testing.T) {
	t.Parallel()
	reg := startRegistrar(t)
	sip, rtp, peer := listen(t), listen(t), listen(t)
	a, err := New(Config{SIP: sip, Media: []net.PacketConn{rtp}, Registrar: local(reg.conn)})
	require.NoError(t, err)
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, i := range []int{-1, 1} {
		require.ErrorIs(t, a.ServeMedia(ctx, i, nil), ErrConfig, "socket %d", i)
	}

	sipIn, mediaIn := make(chan packet, 4), make(chan packet, 4)
	done := make(chan error, 2)
	go func() {
		done <- a.ServeSIP(ctx, func(b []byte, from netip.AddrPort) { sipIn <- packet{string(b), from} })
	}()
	go func() {
		done <- a.ServeMedia(ctx, 0, func(b []byte, from netip.AddrPort) { mediaIn <- packet{string(b), from} })
	}()
	invite := "INVITE sip:a@127.0.0.1 SIP/2.0\r\n\r\n"
	rtpPkt := "\x80\x00\x00\x01rtp"
	for _, tc := range []struct {
		to   *net.UDPConn
		send []string
		in   chan packet
		want string
	}{
		{sip, []string{"\r\n\r\n", invite}, sipIn, invite},
		{rtp, []string{rtpPkt}, mediaIn, rtpPkt},
	} {
		for _, s := range tc.send {
			_, err := peer.WriteToUDPAddrPort([]byte(s), local(tc.to))
			require.NoError(t, err)
		}
		select {
		case p := <-tc.in:
			require.Equal(t, packet{tc.want, local(peer)}, p)
		case <-time.After(5 * time.Second):
			t.Fatalf("%q not handed over", tc.want)
		}
	}

	cancel()
	for range 2 {
		require.NoError(t, <-done)
	}
	for _, c := range []*net.UDPConn{sip, rtp} {
		_, err := peer.WriteToUDPAddrPort([]byte("after"), local(c))
		require.NoError(t, err)
		b := make([]byte, 16)
		n, _, err := c.ReadFromUDPAddrPort(b)
		require.NoError(t, err)
		require.Equal(t, "after", string(b[:n]))
	}
}

// TestRegisterAnswerThroughALG: a SIP ALG that rewrites the REGISTER
// answer's received= to the UA's private address (Linux nf_nat_sip) does not
// move the Contact there: the agent notes the ALG and keeps the public
// address, which the next keep-alive answer confirms. Before, the Contact
// flipped between the two at every REGISTER and keep-alive answer, and the
// phone re-registered (and re-INVITEd its calls) each time. A public
// received= other than the Contact is still followed.
func TestRegisterAnswerThroughALG(t *testing.T) {
	t.Parallel()
	registrar := netip.MustParseAddrPort("203.0.113.2:5060")
	pub := netip.MustParseAddrPort("203.0.113.1:5062")
	for _, tc := range []struct {
		name, received string
		moved          bool
	}{
		{"received= rewritten to the private address", "192.168.1.10;rport=5062", false},
		{"a new public port", "203.0.113.1;rport=40000", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var evs []Event
			a, err := New(Config{SIP: listen(t), Registrar: registrar, OnEvent: func(e Event) { evs = append(evs, e) }})
			require.NoError(t, err)
			defer a.Close()
			a.mu.Lock()
			a.plan, a.started = &Plan{Contact: pub, ContactFrom: FromSTUN, Learn: true}, true
			a.mu.Unlock()
			req := "REGISTER sip:203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.1:5062;branch=z9hG4bK1;rport\r\n" +
				"From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@203.0.113.1:5062>\r\nContent-Length: 0\r\n\r\n"
			resp := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.1:5062;branch=z9hG4bK1;received=" + tc.received + "\r\n" +
				"From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>;tag=r\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@203.0.113.1:5062>;expires=300\r\nContent-Length: 0\r\n\r\n"
			rep, err := a.ObserveRegister([]byte(req), []byte(resp), registrar)
			require.NoError(t, err)
			if !tc.moved {
				require.NotZero(t, rep.Signs&sipmsg.ALGReceivedPrivate, "%v", rep.Signs)
				require.Empty(t, evs, "the ALG's rewrite is not where the registrar saw us")
				require.Equal(t, pub, a.Contact())
				require.Contains(t, strings.Join(a.Plan().Notes, "\n"), "a SIP ALG on the path rewrote the REGISTER")
				return
			}
			require.Len(t, evs, 1)
			require.Equal(t, PublicAddressChanged, evs[0].Kind)
			require.Equal(t, netip.MustParseAddrPort("203.0.113.1:40000"), a.Contact())
		})
	}
}
