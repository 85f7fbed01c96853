package keepalive

// Helpers for the testbed tests: a minimal SIP user agent that registers to
// kamailio and notices requests relayed to it, and a prober on the WAN side.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sipmsg"
)

// A *nat.Client on the SIP socket is what the STUN kind is meant to take.
var _ Binder = (*nat.Client)(nil)

var (
	kamailioUDP = netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort)
	stundAddr   = netip.AddrPortFrom(netlab.Server1, netlab.StundPort)
	coturnAddr  = netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)
)

// labUA is a SIP user agent in the lab's LAN: one socket (UDP, or a TCP
// connection to kamailio) carrying SIP, its keep-alives and STUN.
type labUA struct {
	t     *testing.T
	user  string
	local netip.AddrPort
	udp   *net.UDPConn
	tcp   *net.TCPConn
	stun  *nat.Client

	mu         sync.Mutex
	keeper     *Keeper
	registered bool
	reached    []string // Call-IDs of requests relayed to the UA
	answers    int      // responses to keep-alive OPTIONS
	pongs      int
	events     []Event
	closed     bool
}

// newUDPUA opens a UDP socket on port in the LAN and starts its read loop.
func newUDPUA(t *testing.T, lab *netlab.Lab, user string, port uint16) *labUA {
	conn := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(netlab.Client, port))
	u := &labUA{t: t, user: user, local: netip.AddrPortFrom(netlab.Client, port), udp: conn}
	u.stun = nat.NewClient(conn, nat.ClientConfig{CallerReads: true})
	t.Cleanup(func() { u.stun.Close() })
	go u.readUDP()
	return u
}

// newTCPUA connects to kamailio's TCP listener from the LAN. With keep, the
// UA gets a CRLF Keeper (not started) that owns the read (ReadStream);
// without, the UA reads the stream itself.
func newTCPUA(t *testing.T, lab *netlab.Lab, user string, keep bool) *labUA {
	conn := lab.DialTCP(netlab.LAN, kamailioUDP)
	// No TCP keep-alives from the kernel: only the Keeper may refresh the binding.
	if err := conn.SetKeepAlive(false); err != nil {
		t.Fatal(err)
	}
	u := &labUA{t: t, user: user, local: netip.MustParseAddrPort(conn.LocalAddr().String()), tcp: conn}
	if !keep {
		go u.readTCP()
		return u
	}
	k, err := NewKeeper(KeeperConfig{Kind: CRLF, Send: u.sendKamailio, Timing: labTiming, OnEvent: u.onEvent})
	if err != nil {
		t.Fatal(err)
	}
	u.keeper = k
	t.Cleanup(k.Stop)
	go func() {
		_ = k.ReadStream(conn, func(b []byte) { u.handleSIP(b, kamailioUDP) })
	}()
	return u
}

func (u *labUA) transport() string {
	if u.tcp != nil {
		return "TCP"
	}
	return "UDP"
}

// send writes b to kamailio (or to dst on UDP).
func (u *labUA) send(b []byte, dst netip.AddrPort) error {
	if u.tcp != nil {
		_, err := u.tcp.Write(b)
		return err
	}
	_, err := u.udp.WriteToUDPAddrPort(b, dst)
	return err
}

func (u *labUA) sendKamailio(b []byte) error { return u.send(b, kamailioUDP) }

func (u *labUA) register(n int) []byte {
	contact := fmt.Sprintf("sip:%s@%s", u.user, u.local)
	if u.tcp != nil {
		contact += ";transport=tcp"
	}
	return fmt.Appendf(nil, "REGISTER sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/%s %s;branch=z9hG4bK-reg-%s-%d;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:%s@%s>;tag=reg-%s\r\n"+
		"To: <sip:%s@%s>\r\n"+
		"Call-ID: reg-%s@%s\r\n"+
		"CSeq: %d REGISTER\r\n"+
		"Contact: <%s>\r\n"+
		"Expires: 600\r\n"+
		"Content-Length: 0\r\n\r\n",
		netlab.Server1, u.transport(), u.local, u.user, n, u.user, netlab.Server1, u.user,
		u.user, netlab.Server1, u.user, u.local.Addr(), n, contact)
}

// Register registers the UA's private contact with kamailio, retrying
// (the lab may drop packets) until a 200 arrives.
func (u *labUA) Register() {
	u.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for n := 1; time.Now().Before(deadline); n++ {
		if err := u.sendKamailio(u.register(n)); err != nil {
			u.t.Fatalf("%s: REGISTER: %v", u.user, err)
		}
		if u.poll(700*time.Millisecond, func() bool { return u.registered }) {
			return
		}
	}
	u.t.Fatalf("%s: no 200 to REGISTER", u.user)
}

// poll waits up to d for cond (evaluated under u.mu).
func (u *labUA) poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		u.mu.Lock()
		ok := cond()
		u.mu.Unlock()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Reached reports whether a request with Call-ID id was relayed to the UA.
func (u *labUA) Reached(id string) bool {
	for _, r := range u.reached {
		if r == id {
			return true
		}
	}
	return false
}

// counts returns the responses to keep-alive OPTIONS and the pongs received.
func (u *labUA) counts() (answers, pongs int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.answers, u.pongs
}

func (u *labUA) onEvent(e Event) {
	u.mu.Lock()
	u.events = append(u.events, e)
	u.mu.Unlock()
}

func (u *labUA) eventKinds() []EventKind {
	u.mu.Lock()
	defer u.mu.Unlock()
	var k []EventKind
	for _, e := range u.events {
		k = append(k, e.Kind)
	}
	return k
}

func (u *labUA) readUDP() {
	buf := make([]byte, 65536)
	for {
		n, from, err := u.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		if nat.IsSTUN(b) {
			u.stun.HandlePacket(b, from)
			continue
		}
		if len(bytes.Trim(b, "\r\n")) == 0 { // a keep-alive
			continue
		}
		u.handleSIP(b, from)
	}
}

func (u *labUA) readTCP() {
	r := bufio.NewReaderSize(u.tcp, 65536)
	var buf []byte
	chunk := make([]byte, 65536)
	for {
		n, err := r.Read(chunk)
		if err != nil {
			if err != io.EOF {
				u.mu.Lock()
				u.closed = true
				u.mu.Unlock()
			}
			return
		}
		buf = append(buf, chunk[:n]...)
		for {
			f, err := sipmsg.NextFrame(buf, 0)
			if err != nil {
				u.t.Errorf("%s: TCP stream: %v", u.user, err)
				return
			}
			if f.Kind == sipmsg.FrameNone {
				break
			}
			switch f.Kind {
			case sipmsg.FramePong:
				u.mu.Lock()
				u.pongs++
				k := u.keeper
				u.mu.Unlock()
				if k != nil {
					k.Answer()
				}
			case sipmsg.FrameMessage:
				u.handleSIP(buf[:f.Len], kamailioUDP)
			}
			buf = buf[f.Len:]
		}
	}
}

// handleSIP notes responses and answers requests with 200 OK.
func (u *labUA) handleSIP(b []byte, from netip.AddrPort) {
	msg := string(b)
	cseq := headerValue(msg, "CSeq")
	if strings.HasPrefix(msg, "SIP/2.0 ") {
		u.mu.Lock()
		k := u.keeper
		switch {
		case strings.HasSuffix(cseq, "REGISTER") && strings.HasPrefix(msg, "SIP/2.0 200"):
			u.registered = true
		case strings.HasSuffix(cseq, "OPTIONS"):
			u.answers++
		}
		u.mu.Unlock()
		if k != nil && strings.HasSuffix(cseq, "OPTIONS") {
			k.Answer() // any response counts
		}
		return
	}
	u.mu.Lock()
	u.reached = append(u.reached, headerValue(msg, "Call-ID"))
	u.mu.Unlock()
	_ = u.send(okResponse(msg), from)
}

// headerValue returns the value of the first header named name.
func headerValue(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// okResponse builds a 200 OK to the request msg (RFC 3261 §8.2.6).
func okResponse(msg string) []byte {
	var b bytes.Buffer
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, line := range strings.Split(msg, "\r\n") {
		k, _, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "via", "v", "from", "f", "call-id", "i", "cseq":
			b.WriteString(line + "\r\n")
		case "to", "t":
			b.WriteString(line + ";tag=ua\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// prober sends requests to users through kamailio from the WAN, as a caller would.
type prober struct {
	t    *testing.T
	conn *net.UDPConn
	mu   sync.Mutex
	seq  int
}

func newProber(t *testing.T, lab *netlab.Lab) *prober {
	c := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Server2, 5080))
	go func() { // drain kamailio's responses
		buf := make([]byte, 65536)
		for {
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	return &prober{t: t, conn: c}
}

// probe sends OPTIONS sip:user@203.0.113.2 to kamailio, which relays it to
// the user's registered (received) address, and returns its Call-ID.
func (p *prober) probe(user string) string {
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.mu.Unlock()
	id := fmt.Sprintf("probe-%s-%d@%s", user, seq, netlab.Server2)
	msg := fmt.Appendf(nil, "OPTIONS sip:%s@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s:5080;branch=z9hG4bK-probe-%s-%d;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:prober@%s>;tag=probe\r\n"+
		"To: <sip:%s@%s>\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Content-Length: 0\r\n\r\n",
		user, netlab.Server1, netlab.Server2, user, seq, netlab.Server2, user, netlab.Server1, id)
	if _, err := p.conn.WriteToUDPAddrPort(msg, kamailioUDP); err != nil {
		p.t.Errorf("probe %s: %v", user, err)
	}
	return id
}

// reachable probes u through kamailio up to tries times and reports whether
// one probe arrived within wait of being sent.
func (p *prober) reachable(u *labUA, tries int, wait time.Duration) bool {
	for i := 0; i < tries; i++ {
		id := p.probe(u.user)
		if u.poll(wait, func() bool { return u.Reached(id) }) {
			return true
		}
	}
	return false
}
