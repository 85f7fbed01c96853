package main

import (
	_ "embed"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/sipmsg"
	"github.com/sipnat/sipnat/turn"
	"github.com/stretchr/testify/require"
)

type matrixCase struct {
	caller           string // "sipp" or "baresip", on the WAN at 198.51.100.2
	kind             netlab.Kind
	alg, upnp, cgnat bool
	force            bool             // -force-relay
	transport        sipmsg.Transport // SIP to the registrar; unknown: UDP
}

func (c matrixCase) options() string {
	var o []string
	if c.alg {
		o = append(o, "alg")
	}
	if c.upnp {
		o = append(o, "upnp")
	}
	if c.cgnat {
		o = append(o, "cgnat")
	}
	if c.force {
		o = append(o, "force-relay")
	}
	if len(o) == 0 {
		return "-"
	}
	return strings.Join(o, "+")
}

// directPossible says whether a direct mechanism of the phone (STUN with
// symmetric RTP, a gateway port mapping) can get the caller's audio in: an
// endpoint-independent mapping, or a port mapping on a gateway that faces
// the internet itself. Where none can, the phone relays through TURN.
func (c matrixCase) directPossible() bool {
	switch c.kind {
	case netlab.None, netlab.EIMEIF, netlab.EIMADF, netlab.EIMAPDF:
		return true
	}
	return c.upnp && !c.cgnat
}

func matrixCases(caller string) []matrixCase {
	var cs []matrixCase
	for _, k := range []netlab.Kind{netlab.EIMEIF, netlab.EIMADF, netlab.EIMAPDF, netlab.ADMAPDF, netlab.APDM, netlab.None} {
		for _, alg := range []bool{false, true} {
			for _, upnp := range []bool{false, true} {
				if k == netlab.None && upnp {
					continue
				}
				cs = append(cs, matrixCase{caller: caller, kind: k, alg: alg, upnp: upnp})
			}
		}
	}
	return append(cs,
		matrixCase{caller: caller, kind: netlab.EIMAPDF, cgnat: true},
		matrixCase{caller: caller, kind: netlab.EIMAPDF, cgnat: true, upnp: true},
		matrixCase{caller: caller, kind: netlab.APDM, cgnat: true, upnp: true},
		matrixCase{caller: caller, kind: netlab.EIMEIF, force: true},
	)
}

type matrixRow struct {
	c                      matrixCase
	strategy               string
	registered, incoming   bool
	rtpIn, rtpOut          int64
	predicted, twoWay, alg string
}

// TestMatrix: for every NAT kind, with and without the kernel SIP ALG, with
// and without miniupnpd, and behind CGNAT, the softphone registers to
// kamailio (digest auth) on the WAN side; after idling past the router's
// 5 s binding timeout, sipp calls it through kamailio; the call is answered,
// RTP flows both ways for 2.5 s with both sides counting, and sipp hangs up.
// Two-way media must work wherever a mechanism of the phone allows it, and
// where none does, the phone must have said so before the call.
//
// The matrix runs twice: with sipp as the caller, and with baresip (a real
// softphone, with its own RTP stack) as the caller.
func TestMatrix(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "baresip", "kamailio", "turnserver", "miniupnpd", "nft")
	var mu sync.Mutex
	var rows []matrixRow
	t.Cleanup(func() {
		sort.Slice(rows, func(i, j int) bool { return rowKey(rows[i]) < rowKey(rows[j]) })
		var b strings.Builder
		b.WriteString("\n| caller | kind | options | strategy | registered | incoming call | RTP in | RTP out | two-way audio (said before the call) | ALG seen |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rows {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %d | %d | %s (%s) | %s |\n", r.c.caller, r.c.kind, r.c.options(), r.strategy,
				yes(r.registered), yes(r.incoming), r.rtpIn, r.rtpOut, r.twoWay, r.predicted, r.alg)
		}
		t.Log(b.String())
	})
	for _, c := range append(matrixCases("sipp"), matrixCases("baresip")...) {
		name := c.caller + "/" + string(c.kind) + "/" + c.options()
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			row := runMatrixCase(t, c)
			mu.Lock()
			rows = append(rows, row)
			mu.Unlock()
		})
	}
}

func rowKey(r matrixRow) string {
	return fmt.Sprintf("%s%s%d%d%s", r.c.caller, r.c.transport, map[bool]int{false: 0, true: 1}[r.c.cgnat], map[bool]int{false: 0, true: 1}[r.c.force],
		string(r.c.kind)+r.c.options())
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// labTURN is the lab's TURN relay as the -turn flags give it.
var labTURN = turn.Config{Server: netip.AddrPortFrom(netlab.Server1, netlab.TURNPort),
	Username: netlab.TURNUser, Password: netlab.TURNPassword}

// startPhone runs a softphone in the lab's LAN with every mechanism allowed
// and the lab's TURN relay (forced with force), and waits for its first
// registration. stream, when set, carries its SIP over TCP or TLS.
func startPhone(t *testing.T, lab *netlab.Lab, force bool, stream ...*StreamConfig) (*Phone, *netlab.Output) {
	return startPhoneWith(t, lab, lab.Truth().Client, labPhone(lab, force).withStream(stream))
}

// labPhone is the phone's Config in lab: every mechanism allowed and the
// lab's TURN relay (forced with force).
func labPhone(lab *netlab.Lab, force bool) Config {
	return Config{
		Registrar: netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort), User: "alice", Password: netlab.KamailioPassword,
		STUN:        []netip.AddrPort{netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)},
		LifetimeMax: 12 * time.Second,
		Gateway:     netlab.RouterLAN, DialContext: lab.DialContext(netlab.LAN), ListenPacket: lab.ListenPacket(netlab.LAN),
		TURN: labTURN, ForceRelay: force,
	}
}

// sippCall has sipp on the WAN (198.51.100.2) call alice through kamailio
// (netlab.Lab.SippCall): RTP packets that reached sipp, and sipp's error.
func sippCall(_ *testing.T, lab *netlab.Lab) (int64, error) {
	return lab.SippCall("alice", netlab.Peer, netlab.Server1)
}

// countRTP counts, with an nftables counter in the caller's own namespace,
// the UDP packets that reach 198.51.100.2 on dports (a port or a range).
// It returns a function that reads the count.
func countRTP(lab *netlab.Lab, dports string) func() int64 {
	return lab.CountUDP(netlab.WAN, netlab.Peer, dports)
}

func runMatrixCase(t *testing.T, c matrixCase) matrixRow {
	row := matrixRow{c: c, predicted: "?", twoWay: "no", alg: "-"}
	blocked := c.kind == netlab.Blocked
	cfg := netlab.Config{Kind: c.kind, Timeout: 5 * time.Second, ALG: c.alg, UPnP: c.upnp,
		CGNAT: c.cgnat, KamailioAuth: true, Coturn: true, TURN: &netlab.TURN{Mobility: true, TLS: blocked && c.transport == sipmsg.TLS}}
	var stream []*StreamConfig
	if c.transport == sipmsg.TCP || c.transport == sipmsg.TLS {
		cfg.TCPTimeout, cfg.KamailioFlowTimer, cfg.KamailioTLS = 5*time.Second, 3*time.Second, c.transport == sipmsg.TLS
	}
	lab := netlab.New(t, cfg)
	if cfg.TCPTimeout > 0 {
		stream = append(stream, streamFor(lab, c.transport))
	}
	pc := labPhone(lab, c.force).withStream(stream)
	if blocked { // media through the relay over TCP (picked) or TLS (asked), held open below the router's 5 s TCP timeout
		pc.TURNKeepAlive = 2 * time.Second
		if c.transport == sipmsg.TLS {
			pc.TURNTransport, pc.TURNRootCAs = sipmsg.TLS, lab.Certs().Roots
			pc.TURN.Server = netip.AddrPortFrom(netlab.Server1, netlab.TURNTLSPort)
		}
	}
	phone, _ := startPhoneWith(t, lab, lab.Truth().Client, pc)
	row.registered = true
	s := phone.Plan()
	row.strategy = s.Name()
	row.predicted = map[bool]string{true: "works", false: "needs a relay"}[s.TwoWayAudio.Works] + ", " + string(s.Decision)
	// the relay only where nothing direct works, or when forced; said in words
	switch {
	case c.force:
		require.Equal(t, agent.ForceRelay, s.Decision, "%s", s)
	case !c.directPossible():
		require.Equal(t, agent.Relay, s.Decision, "%s", s)
	default:
		require.NotContains(t, []agent.Decision{agent.Relay, agent.ForceRelay}, s.Decision, "%s", s)
	}
	if s.Relay.Needed {
		require.Contains(t, s.TwoWayAudio.Reason, "media through the TURN relay", "the phone says in words that it relays")
		require.Equal(t, agent.FromRelay, s.Media[0].From)
		require.Equal(t, netlab.Server1, s.Media[0].Public.Addr(), "the SDP names the relayed address")
	}
	if blocked {
		want := c.transport // TCP picked by the agent; TLS asked for
		require.Equal(t, want, s.Relay.Transport, "UDP is blocked: the relay is reached over a stream: %s", s)
		require.Contains(t, s.TwoWayAudio.Reason, "UDP is blocked: the relay is reached over "+want.String())
	} else {
		// (the agent's incoming-call prediction is about SIP over UDP, which
		// the blocked kind stops; the phone's flow carries SIP there)
		require.True(t, s.IncomingCalls.Works, "incoming calls are possible on every kind here: %s", s)
	}

	time.Sleep(6 * time.Second) // idle past the router's 5 s UDP and TCP timeouts: only keep-alives keep them

	call := sippCall
	if c.caller == "baresip" {
		call = baresipCall
	}
	rtpOut, sippErr := call(t, lab)
	st := phone.Stats()
	row.incoming = sippErr == nil && st.Calls >= 1 && st.Ended >= 1
	row.rtpIn, row.rtpOut = st.RTPIn, rtpOut
	if st.ALG != "" {
		row.alg = st.ALG
	}
	twoWay := row.rtpIn >= 50 && row.rtpOut >= 50 // 2.5 s of 20 ms packets is 125
	row.twoWay = yes(twoWay)

	require.True(t, row.incoming, "incoming call: %v, phone %+v", sippErr, st)
	require.True(t, s.TwoWayAudio.Works, "the phone's prediction of two-way audio: %s", s)
	require.True(t, twoWay, "two-way audio: RTP in %d, out %d", row.rtpIn, row.rtpOut)
	return row
}

func (c Config) withStream(s []*StreamConfig) Config {
	if len(s) > 0 {
		c.Stream = s[0]
	}
	return c
}

// TestReregisterOnMappingChange: when the router forgets the binding and
// maps the SIP socket to another port, the next keep-alive answer (rport)
// says so, the phone registers again with the new Contact, and calls still
// reach it.
func TestReregisterOnMappingChange(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver", "nft")
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: 5 * time.Second, KamailioAuth: true, Coturn: true})
	phone, out := startPhone(t, lab, false)
	require.Equal(t, agent.FromSTUN, phone.Plan().ContactFrom)

	lab.SetNATPortRange(50000, 50100)
	ka := phone.Plan().KeepAlive
	flushed := time.Now()
	lab.FlushConntrack()
	seenAt, _ := waitOutput(t, out, flushed, "re-registering: a keep-alive answer says", "re-registering")
	deadline := time.Now().Add(20 * time.Second)
	for phone.Stats().Registers < 2 {
		require.True(t, time.Now().Before(deadline), "no re-registration after the mapping changed (%+v):\n%s", phone.Stats(), out.String())
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("UDP: router reboot: new mapping seen after %v, registered again after %v (the agent's %s keep-alive every %v)",
		seenAt.Round(10*time.Millisecond), time.Since(flushed).Round(10*time.Millisecond), ka.Kind, ka.Interval)
	require.LessOrEqual(t, seenAt, ka.Interval, "the reboot is seen within one keep-alive interval, wherever in the cycle it came")
	require.GreaterOrEqual(t, phone.Stats().Reregisters, 1)
	require.Contains(t, out.String(), "re-registering: a keep-alive answer says the registrar sees us at 203.0.113.1:50")
	require.Contains(t, out.String(), "nat: keepalive-shortened", "the moved binding shortens the keep-alive interval")
	dump, err := lab.KamailioRPC("ul.dump")
	require.NoError(t, err)
	require.Regexp(t, `Address: sip:alice@203\.0\.113\.1:50[01]\d\d`, dump)

	rtpOut, sippErr := sippCall(t, lab)
	require.NoError(t, sippErr)
	st := phone.Stats()
	require.GreaterOrEqual(t, st.RTPIn, int64(50))
	require.GreaterOrEqual(t, rtpOut, int64(50))
}

// baresipCall has baresip on the WAN (198.51.100.2) call alice through
// kamailio, send 8 kHz audio from a file and hang up after 6 s. It returns
// how many RTP packets reached its media ports, and baresip's error.
func baresipCall(t *testing.T, lab *netlab.Lab) (int64, error) {
	received := countRTP(lab, "6000-6010")
	out, err := baresipCommand(t, lab, 6*time.Second).CombinedOutput()
	return received(), baresipResult(out, err)
}

// baresipCommand prepares baresip on the WAN (198.51.100.2) to call alice
// through kamailio, send 8 kHz audio from a file and hang up after d.
func baresipCommand(t *testing.T, lab *netlab.Lab, d time.Duration) *exec.Cmd {
	// baresip's RTP socket is not bound to its address: make the lab route
	// towards the phone pick 198.51.100.2 as source, as its SDP says
	route := []string{"ip", "route", "add", "203.0.113.1/32", "dev", "eth0", "src", netlab.Peer.String()}
	if lab.Truth().Kind == netlab.None {
		route = []string{"ip", "route", "add", netlab.OpenClient.String() + "/32", "via", netlab.Public.String(), "src", netlab.Peer.String()}
	}
	out, err := lab.Command(netlab.WAN, route[0], route[1:]...).CombinedOutput()
	require.NoError(t, err, "%v: %s", route, out)
	// and towards the TURN relay, which shares the namespace (its address is local here)
	relayRoute := []string{"route", "replace", "local", netlab.Server1.String(), "dev", "eth0", "table", "local",
		"proto", "kernel", "scope", "host", "src", netlab.Peer.String()}
	out, err = lab.Command(netlab.WAN, "ip", relayRoute...).CombinedOutput()
	require.NoError(t, err, "ip %v: %s", relayRoute, out)
	dir := filepath.Join(lab.Dir(), "baresip")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	conf := "sip_listen 198.51.100.2:5090\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n" +
		"module account.so\nmodule menu.so\naudio_source aufile," + filepath.Join(dir, "tone.wav") + "\n" +
		"audio_player aufile,/dev/null\nrtp_ports 6000-6010\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config"), []byte(conf), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:bob@198.51.100.2>;regint=0;audio_codecs=PCMU\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tone.wav"), wav8k(d+4*time.Second), 0o644))
	secs := strconv.Itoa(int(d / time.Second))
	return lab.Command(netlab.WAN, "timeout", strconv.Itoa(int(d/time.Second)+24), "baresip", "-f", dir, "-e", "/dial sip:alice@203.0.113.2", "-t", secs)
}

// baresipResult turns baresip's output and exit into an error.
func baresipResult(out []byte, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("baresip: %w\n%s", err, tail(string(out)))
	case !strings.Contains(string(out), "Call established"):
		return fmt.Errorf("baresip: no call established\n%s", tail(string(out)))
	}
	return nil
}

// wav8k is d of a 400 Hz square wave, 8 kHz mono 16-bit PCM, as baresip's
// aufile source reads it.
func wav8k(d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	b := make([]byte, 44+2*n)
	le := binary.LittleEndian
	copy(b, "RIFF")
	le.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	le.PutUint32(b[16:], 16)
	le.PutUint16(b[20:], 1) // PCM
	le.PutUint16(b[22:], 1) // mono
	le.PutUint32(b[24:], 8000)
	le.PutUint32(b[28:], 16000)
	le.PutUint16(b[32:], 2)
	le.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	le.PutUint32(b[40:], uint32(2*n))
	for i := 0; i < n; i++ {
		v := int16(3000)
		if (i/10)%2 == 0 {
			v = -3000
		}
		le.PutUint16(b[44+2*i:], uint16(v))
	}
	return b
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
