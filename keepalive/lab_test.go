package keepalive

// Testbed tests: real NATs (internal/netlab) with a 5 s binding timeout, a
// real registrar (kamailio), real STUN servers (stund, coturn). Each test
// builds its own lab and idles for real time, so they run in parallel.

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/sipmsg"
)

const (
	labTimeout = 5 * time.Second  // the router's UDP binding timeout
	labIdle    = 20 * time.Second // how long the UAs stay silent (but for keep-alives)
)

// labTiming is what a UA knows once nat measured the binding lifetime.
var labTiming = Timing{Lifetime: labTimeout}

func (u *labUA) startKeeper(cfg KeeperConfig) *Keeper {
	u.t.Helper()
	cfg.OnEvent = u.onEvent
	k, err := NewKeeper(cfg)
	require.NoError(u.t, err)
	u.mu.Lock()
	u.keeper = k
	u.mu.Unlock()
	k.Start()
	u.t.Cleanup(k.Stop)
	require.Equal(u.t, labTimeout/2, k.Interval(), "%s: interval from the 5 s lifetime", u.user)
	return k
}

// optionsFor returns the OPTIONS builder of a UA's keep-alive.
func optionsFor(u *labUA) func(dst []byte, n uint32) []byte {
	return OptionsBuilder(sipmsg.OptionsRequest{
		RequestURI: "sip:" + netlab.Server1.String(),
		From:       fmt.Sprintf("sip:%s@%s", u.user, netlab.Server1),
		SentBy:     u.local,
		Transport:  u.transport(),
		Branch:     "ka-" + u.user,
		CallID:     "ka-" + u.user + "@" + u.local.Addr().String(),
	})
}

// checkSent checks that a keeper sent at its computed interval during the
// idle time: 2–2.5 s apart (plus the answer's round trip for kinds that wait
// for one, on a loaded CI host up to half a second) means 7–10 keep-alives
// in 20 s; the bounds leave one either way.
func checkSent(t *testing.T, user string, k *Keeper, idle time.Duration) {
	t.Helper()
	sent := k.Sent()
	lo := uint64(idle/(labTimeout/2+500*time.Millisecond)) - 1
	hi := uint64(idle/(labTimeout/2*8/10)) + 1
	require.True(t, sent >= lo && sent <= hi, "%s sent %d keep-alives in %v, want %d-%d", user, sent, idle, lo, hi)
	t.Logf("%s: %d keep-alives in %v (interval %v)", user, sent, idle, k.Interval())
}

// TestLabClientKinds: eim-apdf, 5 s timeout. UAs with each client kind stay
// reachable through kamailio after 20 s idle, STUN included when it goes to
// kamailio's own SIP port (RFC 5626 §4.4.2; kamailio's stun module answers
// it); the control UAs (UDP and TCP, no keep-alive) do not, and neither does
// STUN sent to a port other than the SIP server's.
func TestLabClientKinds(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: labTimeout, Kamailio: true, Stund: true})
	// The lab times out UDP only; make idle TCP bindings expire as fast so the TCP control means something.
	out, err := lab.Command(netlab.RTR, "sysctl", "-w", "net.netfilter.nf_conntrack_tcp_timeout_established=5").CombinedOutput()
	require.NoError(t, err, "%s", out)

	ctl := newUDPUA(t, lab, "ctl", 5061)
	udp := newUDPUA(t, lab, "udp", 5062)
	opt := newUDPUA(t, lab, "opt", 5063)
	stunOther := newUDPUA(t, lab, "stunother", 5064)
	stunSIP := newUDPUA(t, lab, "stunsip", 5065)
	tcp := newTCPUA(t, lab, "tcp", true)
	tcpctl := newTCPUA(t, lab, "tcpctl", false)
	all := []*labUA{ctl, udp, opt, stunOther, stunSIP, tcp, tcpctl}
	for _, u := range all {
		u.Register()
	}
	kUDP := udp.startKeeper(KeeperConfig{Kind: UDP, Send: udp.sendKamailio, Timing: labTiming})
	kOpt := opt.startKeeper(KeeperConfig{Kind: Options, Send: opt.sendKamailio, Request: optionsFor(opt), Timing: labTiming})
	kStun := stunOther.startKeeper(KeeperConfig{Kind: STUN, Binder: stunOther.stun, Server: stundAddr, Timing: labTiming})
	kStunSIP := stunSIP.startKeeper(KeeperConfig{Kind: STUN, Binder: stunSIP.stun, Server: kamailioUDP, Timing: labTiming})
	kTCP := tcp.keeper // reads the stream itself: pongs answer its pings
	kTCP.Start()

	// RTP on hold: a media socket keeps its binding to the remote media peer.
	peer := newMediaPeer(t, lab)
	media := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client, 40000))
	mediaCtl := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client, 40002))
	mediaGot, mediaCtlGot := recvCounter(media), recvCounter(mediaCtl)
	sendMedia := func(c *net.UDPConn) func([]byte) error {
		return func(b []byte) error { _, err := c.WriteToUDPAddrPort(b, peer.addr); return err }
	}
	for _, c := range []*net.UDPConn{media, mediaCtl} { // the call's last media before the hold
		require.NoError(t, sendMedia(c)(AppendRTPKeepalive(nil, 0, 1, 160, 1)))
	}
	rtpUA := &labUA{t: t, user: "rtp"}
	kRTP := rtpUA.startKeeper(KeeperConfig{Kind: RTP, Send: sendMedia(media), RTP: RTPState{SSRC: 0x5eed, Seq: 2, Timestamp: 320, ClockRate: 8000}, Timing: labTiming})

	time.Sleep(labIdle) // the point of the test: idle beyond the binding timeout

	for _, c := range []struct {
		u *labUA
		k *Keeper
	}{{udp, kUDP}, {opt, kOpt}, {stunOther, kStun}, {stunSIP, kStunSIP}, {tcp, kTCP}, {rtpUA, kRTP}} {
		checkSent(t, c.u.user, c.k, labIdle)
		require.Empty(t, c.u.eventKinds(), "%s: no events on a healthy flow", c.u.user)
	}
	answers, _ := opt.counts()
	require.Positive(t, answers, "kamailio answered the OPTIONS keep-alives")
	require.False(t, kTCP.Failed(), "kamailio answered every CRLF ping with a pong within 10 s")
	require.Equal(t, netip.AddrPortFrom(netlab.Public, 5064), kStun.Mapping())
	require.Equal(t, netip.AddrPortFrom(netlab.Public, 5065), kStunSIP.Mapping())

	p := newProber(t, lab)
	var wg sync.WaitGroup
	check := func(u *labUA, want bool) {
		defer wg.Done()
		got := p.reachable(u, 1, 4*time.Second)
		if got != want {
			t.Errorf("%s reachable through kamailio = %v, want %v", u.user, got, want)
		}
	}
	wg.Add(len(all))
	go check(udp, true)
	go check(opt, true)
	go check(tcp, true)
	go check(ctl, false)
	go check(tcpctl, false)
	go check(stunOther, false)
	go check(stunSIP, true)
	wg.Wait()

	require.Positive(t, peer.keepalives(), "RTP keep-alives arrived at the media peer")
	peer.sendTo(peer.source(media.LocalAddr()), peer.source(mediaCtl.LocalAddr()))
	require.True(t, pollCount(mediaGot, 3*time.Second), "media on hold reachable with RTP keep-alives")
	require.False(t, pollCount(mediaCtlGot, time.Second), "media without keep-alives unreachable")
}

// TestLabSTUN: eim-adf (address-restricted), 5 s timeout. STUN keep-alives
// to stund and to coturn on the SIP server's address keep the UA reachable
// through kamailio; flushing the router's conntrack and moving its NAT port
// range makes the STUN kind report the new mapping within one interval.
func TestLabSTUN(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMADF, Timeout: labTimeout, Kamailio: true, Stund: true, Coturn: true})
	ctl := newUDPUA(t, lab, "ctl", 5061)
	viaStund := newUDPUA(t, lab, "stund", 5062)
	viaCoturn := newUDPUA(t, lab, "coturn", 5063)
	for _, u := range []*labUA{ctl, viaStund, viaCoturn} {
		u.Register()
	}
	kStund := viaStund.startKeeper(KeeperConfig{Kind: STUN, Binder: viaStund.stun, Server: stundAddr, Timing: labTiming})
	kCoturn := viaCoturn.startKeeper(KeeperConfig{Kind: STUN, Binder: viaCoturn.stun, Server: coturnAddr, Timing: labTiming})

	time.Sleep(labIdle)

	checkSent(t, "stund", kStund, labIdle)
	checkSent(t, "coturn", kCoturn, labIdle)
	require.Equal(t, netip.AddrPortFrom(netlab.Public, 5062), kStund.Mapping())
	require.Equal(t, netip.AddrPortFrom(netlab.Public, 5063), kCoturn.Mapping())
	p := newProber(t, lab)
	require.True(t, p.reachable(viaStund, 1, 4*time.Second), "STUN to stund keeps the UA reachable")
	require.True(t, p.reachable(viaCoturn, 1, 4*time.Second), "STUN to coturn keeps the UA reachable")
	require.False(t, p.reachable(ctl, 1, 4*time.Second), "control without keep-alive")
	for _, u := range []*labUA{viaStund, viaCoturn} {
		require.Empty(t, u.eventKinds(), u.user)
	}

	// The router forgets its bindings and allocates from another range.
	setPortRange(t, lab, 40000, 40100)
	lab.FlushConntrack()
	start := time.Now()
	within := kStund.Interval() + time.Second // one interval, plus a STUN round trip
	for _, u := range []*labUA{viaStund, viaCoturn} {
		require.True(t, u.poll(within, func() bool { return len(u.events) > 0 }), "%s: no event within %v", u.user, within)
		u.mu.Lock()
		e := u.events[0]
		u.mu.Unlock()
		require.Equal(t, MappingChanged, e.Kind, "%s: %v", u.user, e)
		require.Equal(t, netip.AddrPortFrom(netlab.Public, u.local.Port()), e.Previous)
		require.Equal(t, netlab.Public, e.Mapping.Addr())
		require.True(t, e.Mapping.Port() >= 40000 && e.Mapping.Port() <= 40100, "%s: new mapping %v", u.user, e.Mapping)
		t.Logf("%s: %v after %v", u.user, e, time.Since(start).Round(time.Millisecond))
	}
}

// setPortRange replaces the router's source NAT rule (chain postrouting of
// table inet labnat) with one that picks external ports from lo-hi.
func setPortRange(t *testing.T, lab *netlab.Lab, lo, hi uint16) {
	t.Helper()
	out, err := lab.Command(netlab.RTR, "nft", "-a", "list", "chain", "inet", "labnat", "postrouting").CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := regexp.MustCompile(`(?m)^\s*(.*masquerade.*) # handle (\d+)$`).FindSubmatch(out)
	require.NotNil(t, m, "no masquerade rule in:\n%s", out)
	rule := strings.Fields(strings.TrimSpace(string(m[1])))
	for i, f := range rule {
		if f == "masquerade" {
			rule = append(rule[:i:i], "meta", "l4proto", "{", "tcp,", "udp", "}", "masquerade", "to", fmt.Sprintf(":%d-%d", lo, hi))
			break
		}
	}
	args := append([]string{"replace", "rule", "inet", "labnat", "postrouting", "handle", string(m[2])}, rule...)
	out, err = lab.Command(netlab.RTR, "nft", args...).CombinedOutput()
	require.NoError(t, err, "nft %v: %s", args, out)
}

// TestLabLoss: 5 s timeout, 20 % of forwarded packets dropped at random.
// The UDP, OPTIONS and STUN kinds still keep their UAs reachable. The lab
// is eim-adf so that STUN to stund (not kamailio's port) keeps the SIP
// binding too; the control UA shows the timeout still applies.
func TestLabLoss(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMADF, Timeout: labTimeout, Kamailio: true, Stund: true, LossPercent: 20})
	ctl := newUDPUA(t, lab, "ctl", 5061)
	udp := newUDPUA(t, lab, "udp", 5062)
	opt := newUDPUA(t, lab, "opt", 5063)
	stun := newUDPUA(t, lab, "stun", 5064)
	for _, u := range []*labUA{ctl, udp, opt, stun} {
		u.Register()
	}
	kUDP := udp.startKeeper(KeeperConfig{Kind: UDP, Send: udp.sendKamailio, Timing: labTiming})
	kOpt := opt.startKeeper(KeeperConfig{Kind: Options, Send: opt.sendKamailio, Request: optionsFor(opt), Timing: labTiming, MaxMisses: 3})
	kStun := stun.startKeeper(KeeperConfig{Kind: STUN, Binder: stun.stun, Server: stundAddr, Timing: labTiming, MaxMisses: 3})

	time.Sleep(labIdle)

	checkSent(t, "udp", kUDP, labIdle)
	answers, _ := opt.counts()
	t.Logf("opt: %d packets (retransmissions included), %d answers, events %v", kOpt.Sent(), answers, opt.eventKinds())
	t.Logf("stun: %d transactions (each retransmitted as needed), events %v", kStun.Sent(), stun.eventKinds())
	p := newProber(t, lab)
	// The probe itself crosses the lossy router: try a few times.
	var wg sync.WaitGroup
	check := func(u *labUA, tries int, want bool) {
		defer wg.Done()
		if got := p.reachable(u, tries, 3*time.Second); got != want {
			t.Errorf("%s reachable under 20 %% loss = %v, want %v", u.user, got, want)
		}
	}
	wg.Add(4)
	go check(udp, 5, true)
	go check(opt, 5, true)
	go check(stun, 5, true)
	go check(ctl, 2, false)
	wg.Wait()
}

// mediaPeer is the far end of an RTP stream on hold, in the WAN.
type mediaPeer struct {
	conn *net.UDPConn
	addr netip.AddrPort

	mu   sync.Mutex
	ka   int              // RTP keep-alives received
	seen []netip.AddrPort // sources seen
}

func newMediaPeer(t *testing.T, lab *netlab.Lab) *mediaPeer {
	addr := netip.AddrPortFrom(netlab.Server1, 40000)
	p := &mediaPeer{conn: lab.ListenUDP(netlab.WAN, addr), addr: addr}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := p.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			if n == 12 && buf[1]&0x7f == DefaultRTPPayloadType {
				p.ka++
			}
			found := false
			for _, s := range p.seen {
				found = found || s == from
			}
			if !found {
				p.seen = append(p.seen, from)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *mediaPeer) keepalives() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ka
}

// source returns the mapped address the peer saw for a LAN socket: the NAT
// preserves ports (eim-apdf), so it is the public address with the same port.
func (p *mediaPeer) source(local net.Addr) netip.AddrPort {
	port := netip.MustParseAddrPort(local.String()).Port()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.seen {
		if s.Port() == port {
			return s
		}
	}
	return netip.AddrPortFrom(netlab.Public, port)
}

// sendTo sends media to each address, as when the call is taken off hold.
func (p *mediaPeer) sendTo(addrs ...netip.AddrPort) {
	for _, a := range addrs {
		_, _ = p.conn.WriteToUDPAddrPort(AppendRTPKeepalive(nil, 0, 7, 7, 7), a)
	}
}

// recvCounter counts the packets a socket receives.
func recvCounter(c *net.UDPConn) *countRecv {
	r := &countRecv{}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			r.mu.Lock()
			r.n++
			r.mu.Unlock()
		}
	}()
	return r
}

type countRecv struct {
	mu sync.Mutex
	n  int
}

func pollCount(r *countRecv, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := r.n
		r.mu.Unlock()
		if n > 0 {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
