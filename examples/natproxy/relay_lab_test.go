package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/rtpengine/sipedge"
)

// The lab's rtpengine instances: ng ports on Server1, media port ranges.
var relayInstances = []struct {
	ng     netip.AddrPort
	lo, hi int
}{
	{netip.AddrPortFrom(netlab.Server1, 2223), 30000, 30099},
	{netip.AddrPortFrom(netlab.Server1, 2224), 30100, 30199},
}

// relayLab is a lab with the plain registrar, n rtpengine instances and
// natproxy edges on Server2 sharing them.
type relayLab struct {
	lab     *netlab.Lab
	engines []*netlab.Rtpengine
	sets    []*rtpengine.Set
	relays  []*sipedge.Relay
	edges   []netip.AddrPort
}

// With all, the edges relay every call (sipedge.Config.All).
func newRelayLab(t *testing.T, cfg netlab.Config, engines, edges int, all bool) *relayLab {
	netlab.RequireTools(t, "kamailio", "kamcmd", "sipp", "rtpengine", "nft")
	rl := &relayLab{lab: netlab.New(t, cfg)}
	startRegistrar(t, rl.lab, netlab.Server2)
	var addrs []netip.AddrPort
	for _, in := range relayInstances[:engines] {
		rl.engines = append(rl.engines, rl.lab.StartRtpengine(netlab.WAN, in.ng, netlab.Server1, in.lo, in.hi))
		addrs = append(addrs, in.ng)
	}
	for i := 0; i < edges; i++ {
		self := netip.AddrPortFrom(netlab.Server2, uint16(5060+2*i))
		client := rtpengine.NewClient(rl.lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Server2, 0)),
			rtpengine.ClientConfig{RTO: 250 * time.Millisecond, Tries: 2}) // a dead instance costs 0.75 s once; a loaded live one answers well within it
		t.Cleanup(func() { client.Close() })
		set, err := rtpengine.NewSet(rtpengine.SetConfig{Client: client, Instances: addrs})
		require.NoError(t, err)
		relay, err := sipedge.New(sipedge.Config{Set: set, Self: self, All: all})
		require.NoError(t, err)
		p, err := NewProxy(Config{Conn: rl.lab.ListenUDP(netlab.WAN, self), Self: self,
			Upstream: netip.AddrPortFrom(netlab.Server1, 5060), Ping: 2 * time.Second, Relay: relay})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- p.Serve(ctx) }()
		t.Cleanup(func() { cancel(); <-served })
		rl.sets, rl.relays, rl.edges = append(rl.sets, set), append(rl.relays, relay), append(rl.edges, self)
	}
	wd, err := os.Getwd()
	require.NoError(t, err)
	// the caller is the matrix's sipp scenario (netlab.SippCall's)
	for _, f := range []string{"testdata/register.xml", "testdata/dumb-uas.xml", "testdata/dumb-uas-reinvite.xml",
		"testdata/reinvite.xml", "testdata/reinvite-fail.xml", "testdata/dumb-uas-reinvite-fail.xml", "testdata/cancel.xml", "testdata/dumb-uas-cancel.xml", "testdata/late.xml", "testdata/update.xml", "testdata/dumb-uas-update.xml", "../../internal/netlab/uac.xml"} {
		b, err := os.ReadFile(filepath.Join(wd, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(rl.lab.Dir(), filepath.Base(f)), b, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(rl.lab.Dir(), "audio.ulaw"), bytes.Repeat([]byte{0xff}, 8000*4), 0o644))
	return rl
}

// dumbUA is a sipp UA behind the NAT with its private address in SIP and
// SDP and no NAT support at all.
type dumbUA struct {
	user       string
	sip, media int
	edge       netip.AddrPort
}

func (rl *relayLab) sipp(node netlab.Node, args ...string) *netlab.Proc {
	return rl.lab.Start(node, "sipp", append(args, "-nostdin", "-timeout", "20s", "-timeout_error")...)
}

// register has the UA register through its edge.
func (rl *relayLab) register(t *testing.T, ua dumbUA) {
	client := rl.lab.Truth().Client.String()
	out, err := rl.lab.Command(netlab.LAN, "sipp", ua.edge.String(), "-sf", "register.xml", "-s", ua.user, "-m", "1",
		"-i", client, "-p", strconv.Itoa(ua.sip), "-nostdin", "-timeout", "15s", "-timeout_error").CombinedOutput()
	require.NoError(t, err, "sipp REGISTER for %s: %s", ua.user, out)
}

// callResult is one call's outcome.
type callResult struct {
	answered         bool
	atUA, atCaller   int64 // RTP packets that reached each side
	uaErr, callerErr error
}

func (c callResult) twoWay() bool { return c.answered && c.atUA >= 50 && c.atCaller >= 50 }

// call has sipp on the WAN (198.51.100.2) call the UA through the
// registrar with Call-ID callID+"-1"; both stream PCMU for 2.5 s while nftables
// counts what reaches each side's media port.
func (rl *relayLab) call(t *testing.T, ua dumbUA, callID string) callResult {
	return rl.callWith(t, ua, callID, "uac.xml", "dumb-uas.xml")
}

// callWith is call with the caller's and the UA's sipp scenarios.
func (rl *relayLab) callWith(t *testing.T, ua dumbUA, callID, callerScenario, uaScenario string) callResult {
	client := rl.lab.Truth().Client
	atUA := rl.lab.CountUDP(netlab.LAN, client, strconv.Itoa(ua.media))
	atCaller := rl.lab.CountUDP(netlab.WAN, netlab.Peer, "6000")
	uas := rl.sipp(netlab.LAN, "-sf", uaScenario, "-s", ua.user, "-m", "1", "-i", client.String(),
		"-p", strconv.Itoa(ua.sip), "-mi", client.String(), "-mp", strconv.Itoa(ua.media))
	out, err := rl.lab.Command(netlab.WAN, "timeout", "30", "sipp", "203.0.113.2:5060", "-sf", callerScenario, "-s", ua.user,
		"-cid_str", callID+"-%u", "-i", netlab.Peer.String(), "-p", "5080", "-mi", netlab.Peer.String(), "-mp", "6000",
		"-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error").CombinedOutput()
	var res callResult
	if err != nil {
		res.callerErr = fmt.Errorf("caller sipp: %w\n%s", err, tailOf(string(out)))
	}
	select {
	case <-uas.Done():
		if err := uas.Wait(); err != nil {
			res.uaErr = fmt.Errorf("UA sipp: %w\n%s", err, tailOf(uas.Output()))
		}
	case <-time.After(10 * time.Second):
		uas.Stop(time.Second)
		res.uaErr = fmt.Errorf("UA sipp did not finish\n%s", tailOf(uas.Output()))
	}
	res.answered = res.callerErr == nil && res.uaErr == nil
	res.atUA, res.atCaller = atUA(), atCaller()
	return res
}

func tailOf(s string) string {
	if len(s) > 6000 {
		return s[len(s)-6000:]
	}
	return s
}

// requireDeleted checks that no rtpengine instance holds the call any more.
func (rl *relayLab) requireDeleted(t *testing.T, callID string) {
	t.Helper()
	_, err := rl.sets[0].Do(context.Background(), nil, &rtpengine.Request{Command: rtpengine.Query, CallID: []byte(callID + "-1")})
	var er *rtpengine.ErrorReply
	require.ErrorAs(t, err, &er, "the relay still holds %s", callID)
	require.Equal(t, "Unknown call-id", er.Reason)
}

// relayRow is one line of the README's table.
type relayRow struct {
	kind           string
	res            callResult
	offers, public uint64
}

// TestLabRelayMatrix is the matrix's dumb-UA column: behind every NAT kind
// (and behind CGNAT), with a 5 s router binding timeout, a UA that does
// nothing for NAT (sipp, private addresses in SIP and SDP, no STUN, no
// keep-alive) registers through natproxy, idles past the timeout, gets an
// incoming call from the internet, and both sides count RTP: natproxy
// engages rtpengine for every NATed UA and leaves the public one alone.
func TestLabRelayMatrix(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "kamailio", "kamcmd", "sipp", "rtpengine", "nft")
	type relayCase struct {
		name   string
		cfg    netlab.Config
		all    bool // natproxy -rtpengine-all
		sip    int  // the UA's SIP port (5060 for the ALG, which watches it)
		twoWay bool // expected
		relay  bool // the relay is engaged
	}
	var cases []relayCase
	for _, k := range []netlab.Kind{netlab.EIMEIF, netlab.EIMADF, netlab.EIMAPDF, netlab.ADMAPDF, netlab.APDM, netlab.None} {
		cases = append(cases, relayCase{name: string(k), cfg: netlab.Config{Kind: k}, sip: 5070, twoWay: true, relay: k != netlab.None})
	}
	cases = append(cases,
		relayCase{name: "apdm+cgnat(apdm)", cfg: netlab.Config{Kind: netlab.APDM, CGNKind: netlab.APDM}, sip: 5070, twoWay: true, relay: true},
		// the kernel's SIP ALG rewrites the private addresses: no NAT test
		// fires, the edge sees a public UA and leaves the call alone; the
		// ALG's own media handling is enough only with an
		// endpoint-independent mapping. -rtpengine-all relays anyway.
		relayCase{name: "eim-apdf+alg", cfg: netlab.Config{Kind: netlab.EIMAPDF, ALG: true}, sip: 5060, twoWay: true},
		relayCase{name: "apdm+alg", cfg: netlab.Config{Kind: netlab.APDM, ALG: true}, sip: 5060},
		relayCase{name: "apdm+alg, -rtpengine-all", cfg: netlab.Config{Kind: netlab.APDM, ALG: true}, all: true, sip: 5060, twoWay: true, relay: true},
	)
	var mu sync.Mutex
	var rows []relayRow
	t.Cleanup(func() {
		sort.Slice(rows, func(i, j int) bool { return rows[i].kind < rows[j].kind })
		var b strings.Builder
		b.WriteString("\n| UA | kind | registered | incoming call | relay | RTP at UA | RTP at caller | two-way audio |\n|---|---|---|---|---|---|---|---|\n")
		for _, r := range rows {
			relay := "offer+answer"
			switch {
			case r.offers == 0 && strings.Contains(r.kind, "alg"):
				relay = "not engaged (the ALG hides the NAT)"
			case r.offers == 0:
				relay = "not engaged (public peers)"
			}
			fmt.Fprintf(&b, "| sipp, no NAT support | %s | yes | %s | %s | %d | %d | %s |\n", r.kind,
				map[bool]string{true: "yes", false: "no"}[r.res.answered], relay, r.res.atUA, r.res.atCaller,
				map[bool]string{true: "yes", false: "no"}[r.res.twoWay()])
		}
		t.Log(b.String())
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.cfg.Timeout = 5 * time.Second
			rl := newRelayLab(t, c.cfg, 1, 1, c.all)
			ua := dumbUA{user: "alice", sip: c.sip, media: 6000, edge: rl.edges[0]}
			rl.register(t, ua)
			// idle past the router's 5 s binding timeout: the UA sends
			// nothing, only the edge's CRLF pings keep its binding open
			time.Sleep(6 * time.Second)
			res := rl.call(t, ua, "matrix")
			st := rl.relays[0].Stats()
			mu.Lock()
			rows = append(rows, relayRow{kind: c.name, res: res, offers: st.Offers, public: st.Public})
			mu.Unlock()
			require.NoError(t, res.callerErr)
			require.NoError(t, res.uaErr)
			require.Equal(t, c.twoWay, res.twoWay(), "two-way audio: RTP at the UA %d, at the caller %d; relay %+v", res.atUA, res.atCaller, st)
			if c.relay {
				require.Equal(t, [3]uint64{1, 1, 1}, [3]uint64{st.Offers, st.Answers, st.Deletes}, "offers, answers, deletes: %+v", st)
			} else {
				require.Zero(t, st.Offers, "the relay is left out: %+v", st)
				require.Positive(t, st.Public)
			}
			require.Zero(t, st.Failed)
			rl.requireDeleted(t, "matrix")
		})
	}
}

// TestLabRelayFailover: two natproxy edges share two rtpengine instances
// (behind a symmetric NAT, where nothing but the relay brings audio in).
// Each edge's dumb UA gets a call with audio; then the instance the next
// calls hash to is stopped, and the next call through each edge fails
// over to the other instance and still has two-way audio. With both
// instances stopped, a call still goes through with signalling only, and
// each edge counts the failure.
func TestLabRelayFailover(t *testing.T) {
	t.Parallel()
	rl := newRelayLab(t, netlab.Config{Kind: netlab.APDM}, 2, 2, false)
	uas := []dumbUA{
		{user: "alice", sip: 5070, media: 6000, edge: rl.edges[0]},
		{user: "carol", sip: 5072, media: 6002, edge: rl.edges[1]},
	}
	for _, ua := range uas {
		rl.register(t, ua)
	}
	twoWay := func(ua dumbUA, callID string) {
		t.Helper()
		res := rl.call(t, ua, callID)
		require.NoError(t, res.callerErr)
		require.NoError(t, res.uaErr)
		require.True(t, res.twoWay(), "%s: RTP at the UA %d, at the caller %d", callID, res.atUA, res.atCaller)
		t.Logf("%s to %s: RTP at the UA %d, at the caller %d", callID, ua.user, res.atUA, res.atCaller)
	}
	twoWay(uas[0], "fo-a1")
	twoWay(uas[1], "fo-c1")

	// stop the instance the next call through the first edge goes to, and
	// pick a call for the second edge that goes there too
	target := rl.sets[0].Instance([]byte("fo-a2-1"))
	var callC string
	for i := 2; callC == ""; i++ {
		if id := fmt.Sprintf("fo-c%d", i); rl.sets[1].Instance([]byte(id+"-1")) == target {
			callC = id
		}
	}
	var live *netlab.Rtpengine
	for _, e := range rl.engines {
		if e.NG == target {
			e.Proc.Stop(3 * time.Second)
		} else {
			live = e
		}
	}
	twoWay(uas[0], "fo-a2")
	twoWay(uas[1], callC)
	for i, set := range rl.sets {
		st := set.Stats()
		require.Equal(t, uint64(1), st.Failovers, "edge %d: %+v", i, st)
		t.Logf("edge %d after the failover: %+v", i, st)
	}

	// no instance left: signalling only, counted
	live.Proc.Stop(3 * time.Second)
	res := rl.call(t, uas[0], "fo-a3")
	require.NoError(t, res.callerErr, "the call goes through without a relay")
	require.NoError(t, res.uaErr)
	st := rl.relays[0].Stats()
	require.Positive(t, st.Failed, "%+v", st)
	t.Logf("without any rtpengine: RTP at the UA %d, at the caller %d; relay %+v", res.atUA, res.atCaller, st)
}

// symmetricCall builds a lab behind a symmetric NAT with one edge and one
// rtpengine, registers alice and runs one call with the given scenarios.
func symmetricCall(t *testing.T, callID, callerScenario, uaScenario string) (*relayLab, callResult, sipedge.Stats) {
	rl := newRelayLab(t, netlab.Config{Kind: netlab.APDM}, 1, 1, false)
	ua := dumbUA{user: "alice", sip: 5070, media: 6000, edge: rl.edges[0]}
	rl.register(t, ua)
	res := rl.callWith(t, ua, callID, callerScenario, uaScenario)
	require.NoError(t, res.callerErr)
	require.NoError(t, res.uaErr)
	return rl, res, rl.relays[0].Stats()
}

// TestLabRelayReinvite: behind a symmetric NAT, the caller sends new SDP
// in mid-call, in a re-INVITE and in an UPDATE. The edge knows the dialog
// is NATed from the ;nat=yes it put in its Record-Route (the request's
// Route), so it offers again, answers the UA's private SDP, and the audio
// goes on. A re-INVITE the UA refuses (488 Not Acceptable Here, 0.3 s into
// the call) leaves the call's session alone: the audio goes on 2.5 s more
// through rtpengine (nothing else brings it through this NAT) and the BYE
// deletes the session.
func TestLabRelayReinvite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, caller, ua string
		want             [4]uint64 // offers, answers, deletes, kept
	}{
		{"re-INVITE", "reinvite.xml", "dumb-uas-reinvite.xml", [4]uint64{2, 2, 1, 0}},
		{"UPDATE", "update.xml", "dumb-uas-update.xml", [4]uint64{2, 2, 1, 0}},
		{"re-INVITE refused", "reinvite-fail.xml", "dumb-uas-reinvite-fail.xml", [4]uint64{2, 1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rl, res, st := symmetricCall(t, "mid-"+strings.ReplaceAll(tc.name, " ", "-"), tc.caller, tc.ua)
			require.True(t, res.twoWay(), "RTP at the UA %d, at the caller %d; relay %+v", res.atUA, res.atCaller, st)
			require.Equal(t, tc.want, [4]uint64{st.Offers, st.Answers, st.Deletes, st.Kept}, "offers, answers, deletes, kept: %+v", st)
			rl.requireDeleted(t, "mid-"+strings.ReplaceAll(tc.name, " ", "-"))
			t.Logf("%s: RTP at the UA %d, at the caller %d; relay %+v", tc.name, res.atUA, res.atCaller, st)
		})
	}
}

// TestLabRelayLateOffer: the caller's INVITE has no SDP (a late offer); the
// dumb UA behind a symmetric NAT offers in its 200 and the caller answers
// in the ACK. The edge marks its Via on the INVITE, offers the 200's SDP
// (the callee's tag as from-tag) and answers with the ACK's, and the audio
// flows both ways.
func TestLabRelayLateOffer(t *testing.T) {
	t.Parallel()
	rl, res, st := symmetricCall(t, "late", "late.xml", "dumb-uas.xml")
	require.True(t, res.twoWay(), "RTP at the UA %d, at the caller %d; relay %+v", res.atUA, res.atCaller, st)
	require.Equal(t, [3]uint64{1, 1, 1}, [3]uint64{st.Offers, st.Answers, st.Deletes}, "offers, answers, deletes: %+v", st)
	rl.requireDeleted(t, "late")
	t.Logf("late offer: RTP at the UA %d, at the caller %d; relay %+v", res.atUA, res.atCaller, st)
}

// TestLabRelayCancel: the caller cancels while the dumb UA rings; the
// edge deletes the relay's session on the CANCEL.
func TestLabRelayCancel(t *testing.T) {
	t.Parallel()
	rl, _, st := symmetricCall(t, "cancel", "cancel.xml", "dumb-uas-cancel.xml")
	require.Equal(t, uint64(1), st.Offers, "%+v", st)
	require.Equal(t, uint64(1), st.Deletes, "%+v", st)
	rl.requireDeleted(t, "cancel")
}

// TestLabRelayOutgoing: the dumb UA behind a symmetric NAT calls a public
// UA (sipp at 198.51.100.2:5090, through natproxy and the registrar). The
// edge offers the caller's private SDP with its SIP source address and
// answers the public callee's, and both sides hear each other.
func TestLabRelayOutgoing(t *testing.T) {
	t.Parallel()
	rl := newRelayLab(t, netlab.Config{Kind: netlab.APDM}, 1, 1, false)
	client := rl.lab.Truth().Client
	atUA := rl.lab.CountUDP(netlab.LAN, client, "6000")
	atBob := rl.lab.CountUDP(netlab.WAN, netlab.Peer, "6000")
	bob := rl.sipp(netlab.WAN, "-sf", "dumb-uas.xml", "-s", "bob", "-m", "1", "-i", netlab.Peer.String(), "-p", "5090",
		"-mi", netlab.Peer.String(), "-mp", "6000")
	out, err := rl.lab.Command(netlab.LAN, "timeout", "30", "sipp", "198.51.100.2:5090", "-rsa", rl.edges[0].String(),
		"-sf", "uac.xml", "-s", "bob", "-cid_str", "out-%u", "-i", client.String(), "-p", "5070",
		"-mi", client.String(), "-mp", "6000", "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error").CombinedOutput()
	require.NoError(t, err, "caller sipp:\n%s", tailOf(string(out)))
	select {
	case <-bob.Done():
		require.NoError(t, bob.Wait(), tailOf(bob.Output()))
	case <-time.After(10 * time.Second):
		t.Fatalf("bob's sipp did not finish\n%s", tailOf(bob.Output()))
	}
	st := rl.relays[0].Stats()
	require.GreaterOrEqual(t, atUA(), int64(50), "RTP at the caller behind NAT; relay %+v", st)
	require.GreaterOrEqual(t, atBob(), int64(50), "RTP at the public callee; relay %+v", st)
	require.Equal(t, [3]uint64{1, 1, 1}, [3]uint64{st.Offers, st.Answers, st.Deletes}, "offers, answers, deletes: %+v", st)
	rl.requireDeleted(t, "out")
	t.Logf("outgoing: RTP at the caller %d, at the callee %d; relay %+v", atUA(), atBob(), st)
}
