package sipedge

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/sipmsg"
)

// ng is a minimal in-process rtpengine: it records each request's body and
// answers with reply (nil: silence).
type ng struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	reqs  []string
	reply func(req string) string
}

func newNG(t *testing.T, reply func(string) string) (*ng, netip.AddrPort) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	s := &ng{conn: c, reply: reply}
	netlab.ReadLoop(t, c, func(b []byte, from netip.AddrPort) {
		sp := bytes.IndexByte(b, ' ')
		body := string(b[sp+1:])
		s.mu.Lock()
		s.reqs = append(s.reqs, body)
		rep := s.reply
		s.mu.Unlock()
		if r := rep(body); r != "" {
			_, _ = c.WriteToUDPAddrPort(append(b[:sp+1:sp+1], r...), from)
		}
	})
	return s, c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (s *ng) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func (s *ng) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return ""
	}
	return s.reqs[len(s.reqs)-1]
}

const relayed = "v=0\r\nc=IN IP4 203.0.113.2\r\nm=audio 30000 RTP/AVP 0\r\n"

func okSDP(req string) string {
	if strings.Contains(req, "6:delete") {
		return "d6:result2:oke"
	}
	return "d6:result2:ok3:sdp" + itoa(len(relayed)) + ":" + relayed + "e"
}

func itoa(n int) string { return strconv.Itoa(n) }

var (
	self = netip.MustParseAddrPort("203.0.113.3:5060")
	ua   = netip.MustParseAddrPort("203.0.113.1:40000")
	up   = netip.MustParseAddrPort("203.0.113.2:5060")
)

const sdpBody = "v=0\r\no=a 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"

func msg(t *testing.T, start, via, extra, body string) *sipmsg.Message {
	s := start + "\r\nVia: " + via + "\r\nFrom: <sip:a@x>;tag=ft\r\nTo: <sip:b@x>" + extra + "\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\n"
	if body != "" {
		s += "Content-Type: application/sdp\r\n"
	}
	s += "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	var m sipmsg.Message
	require.NoError(t, m.Parse([]byte(s)))
	return &m
}

func newRelay(t *testing.T, reply func(string) string, rto time.Duration) (*Relay, *ng) {
	srv, addr := newNG(t, reply)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c := rtpengine.NewClient(conn, rtpengine.ClientConfig{RTO: rto, Tries: 2})
	t.Cleanup(func() { c.Close() })
	set, err := rtpengine.NewSet(rtpengine.SetConfig{Client: c, Instances: []netip.AddrPort{addr}})
	require.NoError(t, err)
	r, err := New(Config{Set: set, Self: self})
	require.NoError(t, err)
	return r, srv
}

// TestRelay walks a call through the edge's decisions.
func TestRelay(t *testing.T) {
	t.Parallel()
	r, srv := newRelay(t, okSDP, time.Second)
	ctx := context.Background()
	viaUA := "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1"
	viaSelf := signedVia(t, r, "z9hG4bKnp1", Offered)
	for _, tc := range []struct {
		name      string
		m         *sipmsg.Message
		response  bool
		src       netip.AddrPort
		nat       bool
		act       Action
		sent      []string // in the ng request
		notSent   []string
		wantsBody bool
	}{
		{name: "INVITE between public peers", m: msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", viaUA, "", sdpBody), src: ua, act: None},
		{name: "INVITE from a NATed caller", m: msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", viaUA, "", sdpBody), src: ua, nat: true, act: Offered, wantsBody: true,
			sent: []string{"5:offer", "SIP-source-address", "13:received-froml3:IP411:203.0.113.1e", "3:ICE6:remove", "6:origin18:session-connection", "8:from-tag2:ft"}},
		{name: "INVITE already offered by an edge on the way", m: msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", viaSelf+"\r\nVia: "+viaUA, "", sdpBody), src: ua, nat: true, act: Leg},
		{name: "INVITE to a NATed callee (alias)", m: msg(t, "INVITE sip:b@192.168.1.10:5070;alias=203.0.113.1~5070~1 SIP/2.0", "SIP/2.0/UDP 203.0.113.2;branch=z9hG4bKk", "", sdpBody), src: up, act: Offered, wantsBody: true,
			sent: []string{"5:offer", "13:trust-address"}, notSent: []string{"received-from"}},
		{name: "INVITE without SDP from a NATed caller (late offer)", m: msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", viaUA, "", ""), src: ua, nat: true, act: Late},
		{name: "INVITE without SDP between public peers", m: msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", viaUA, "", ""), src: ua, act: None},
		{name: "200 offering at the late-offer hop", m: msg(t, "SIP/2.0 200 OK", signedVia(t, r, "z9hG4bKnp3", Late), ";tag=tt", sdpBody), response: true, src: up, act: Offered, wantsBody: true,
			sent: []string{"5:offer", "8:from-tag2:tt", "6:to-tag2:ft", "13:trust-address"}},
		{name: "ACK answering the late offer", m: msg(t, "ACK sip:b@198.51.100.2 SIP/2.0\r\nRoute: <sip:203.0.113.3:5060;lr;nat=yes>", viaUA, ";tag=tt", sdpBody), src: ua, nat: true, act: Answered, wantsBody: true,
			sent: []string{"6:answer", "8:from-tag2:tt", "6:to-tag2:ft", "SIP-source-address"}},
		{name: "ACK answered by an edge on the way", m: msg(t, "ACK sip:b@198.51.100.2 SIP/2.0", "SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp4;rtpengine=answer\r\nVia: "+viaUA, ";tag=tt", sdpBody), src: up, act: None},
		{name: "ACK without SDP", m: msg(t, "ACK sip:b@198.51.100.2 SIP/2.0\r\nRoute: <sip:203.0.113.3:5060;lr;nat=yes>", viaUA, ";tag=tt", ""), src: ua, nat: true, act: None},
		{name: "200 at the hop that offered", m: msg(t, "SIP/2.0 200 OK", viaSelf, ";tag=tt", sdpBody), response: true, src: ua, nat: true, act: Answered, wantsBody: true,
			sent: []string{"6:answer", "6:to-tag2:tt", "SIP-source-address"}},
		{name: "200 at another hop", m: msg(t, "SIP/2.0 200 OK", "SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp2", ";tag=tt", sdpBody), response: true, src: up, act: None},
		{name: "re-INVITE inside a marked dialog", m: msg(t, "INVITE sip:a@192.168.1.10:5070 SIP/2.0\r\nRoute: <sip:203.0.113.3:5060;lr;nat=yes>", "SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKr", ";tag=tt", sdpBody), src: up, act: Offered, wantsBody: true},
		{name: "BYE inside a marked dialog", m: msg(t, "BYE sip:a@192.168.1.10:5070 SIP/2.0\r\nRoute: <sip:203.0.113.3:5060;lr;nat=yes>", "SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKb", ";tag=tt", ""), src: up, act: Deleted,
			sent: []string{"6:delete", "7:call-id6:call-1"}, notSent: []string{"to-tag"}},
		{name: "BYE of a public call", m: msg(t, "BYE sip:a@198.51.100.9 SIP/2.0", "SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKb2", ";tag=tt", ""), src: up, act: None},
		{name: "486 to a relayed INVITE", m: msg(t, "SIP/2.0 486 Busy Here", viaSelf, ";tag=tt", ""), response: true, src: up, act: None},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.count()
			var body []byte
			var act Action
			var err error
			if tc.response {
				body, act, err = r.Response(ctx, nil, tc.m, tc.src, tc.nat, "")
			} else {
				body, act, err = r.Request(ctx, nil, tc.m, tc.src, tc.nat, "")
			}
			require.NoError(t, err)
			require.Equal(t, tc.act, act)
			require.Equal(t, tc.wantsBody, body != nil)
			if body != nil {
				require.Equal(t, relayed, string(body))
			}
			if tc.act == None || tc.act == Leg {
				require.Equal(t, before, srv.count(), "no ng request")
				return
			}
			for _, s := range tc.sent {
				require.Contains(t, srv.last(), s)
			}
			for _, s := range tc.notSent {
				require.NotContains(t, srv.last(), s)
			}
		})
	}
	st := r.Stats()
	require.Equal(t, Stats{Offers: 4, Answers: 2, Deletes: 1, Public: 2}, st)

	// a failure answer deletes a call the set holds
	_, act, err := r.Request(ctx, nil, msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", viaUA, "", sdpBody), ua, true, "")
	require.NoError(t, err)
	require.Equal(t, Offered, act)
	_, act, err = r.Response(ctx, nil, msg(t, "SIP/2.0 486 Busy Here", viaSelf, ";tag=tt", ""), up, false, "")
	require.NoError(t, err)
	require.Equal(t, Deleted, act)
}

// TestRelayFailures: rtpengine silent or answering garbage: the message
// goes on unchanged, the failure is counted and the error says why.
func TestRelayFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply func(string) string
		is    error
	}{
		{"down", func(string) string { return "" }, rtpengine.ErrTimeout},
		{"malformed bencode", func(string) string { return "d6:result2:ok3:sdp99:v=0e" }, rtpengine.ErrBencode},
		{"refused", func(string) string { return "d6:result5:error12:error-reason8:no portse" }, rtpengine.ErrRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newRelay(t, tc.reply, 200*time.Millisecond) // replies come well within it, even on a loaded machine
			invite := msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "", sdpBody)
			body, act, err := r.Request(context.Background(), nil, invite, ua, true, "")
			require.Nil(t, body)
			require.Equal(t, Failed, act)
			require.ErrorIs(t, err, tc.is)
			require.Equal(t, uint64(1), r.Stats().Failed)
		})
	}
}

func TestMarks(t *testing.T) {
	t.Parallel()
	require.Equal(t, "<sip:203.0.113.3:5060;lr;nat=yes>", string(AppendRecordRoute(nil, self, true)))
	require.Equal(t, "<sip:203.0.113.3:5060;lr>", string(AppendRecordRoute(nil, self, false)))
	r, err := New(Config{Set: &rtpengine.Set{}, Self: self, Key: []byte("k")})
	require.NoError(t, err)
	invite := msg(t, "INVITE sip:b@x SIP/2.0", "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "", "")
	const via = "SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp1"
	for _, tc := range []struct {
		act  Action
		want string
	}{
		{Offered, ";rtpengine=offer-"},
		{Late, ";rtpengine=late-"},
		{Answered, ";rtpengine=answer-"},
	} {
		got := string(r.AppendViaMark([]byte(via), invite, tc.act))
		require.Regexp(t, "^"+regexp.QuoteMeta(via+tc.want)+"[0-9a-f]{16}$", got, tc.act)
	}
	require.Regexp(t, "^"+regexp.QuoteMeta(via+";rtpengine=ended-")+"[0-9a-f]{16}$", string(r.AppendViaMark([]byte(via), invite, Deleted)))
	require.Equal(t, via, string(r.AppendViaMark([]byte(via), invite, Failed)))
	require.Equal(t, "SIP/2.0/UDP 203.0.113.3", string(r.AppendViaMark([]byte("SIP/2.0/UDP 203.0.113.3"), invite, Offered)), "no branch, no mark")
	other := msg(t, "BYE sip:a@x SIP/2.0\r\nRoute: <sip:203.0.113.9:5060;lr;nat=yes>", "SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx", "", "")
	require.False(t, Marked(other, self), "another proxy's mark")
	_, err = New(Config{})
	require.Error(t, err)
}

// TestRelayAll: with Config.All a call between public peers is relayed too.
func TestRelayAll(t *testing.T) {
	t.Parallel()
	r, srv := newRelay(t, okSDP, time.Second)
	r.all = true
	invite := msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", "SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bK1", "", sdpBody)
	body, act, err := r.Request(context.Background(), nil, invite, netip.MustParseAddrPort("203.0.113.9:5060"), false, "")
	require.NoError(t, err)
	require.Equal(t, Offered, act)
	require.Equal(t, relayed, string(body))
	require.Contains(t, srv.last(), "13:trust-address")
	bye := msg(t, "BYE sip:b@198.51.100.2 SIP/2.0", "SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bK2", ";tag=tt", "")
	_, act, err = r.Request(context.Background(), nil, bye, netip.MustParseAddrPort("203.0.113.9:5060"), false, "")
	require.NoError(t, err)
	require.Equal(t, Deleted, act)
}

// signedVia is the edge's Via for the INVITE msg builds (call-1, From tag
// ft, CSeq 1) with branch and act's mark, as AppendViaMark writes it.
func signedVia(t *testing.T, r *Relay, branch string, act Action) string {
	t.Helper()
	invite := msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "", "")
	return string(r.AppendViaMark([]byte("SIP/2.0/UDP 203.0.113.3:5060;branch="+branch), invite, act))
}

// TestRelayFamily: a dual-stack edge (Config.AltSelf) asks rtpengine for
// the reader's address family, relays a call between public peers of two
// families (nothing else would bridge them) but not one within a family,
// and takes its Via mark at either address as its own.
func TestRelayFamily(t *testing.T) {
	t.Parallel()
	srv, addr := newNG(t, okSDP)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c := rtpengine.NewClient(conn, rtpengine.ClientConfig{RTO: time.Second})
	t.Cleanup(func() { c.Close() })
	set, err := rtpengine.NewSet(rtpengine.SetConfig{Client: c, Instances: []netip.AddrPort{addr}})
	require.NoError(t, err)
	self6 := netip.MustParseAddrPort("[2001:db8:ff::3]:5060")
	r, err := New(Config{Set: set, Self: self, AltSelf: self6})
	require.NoError(t, err)
	ctx := context.Background()
	public6 := "v=0\r\no=b 1 1 IN IP6 2001:db8:1::10\r\ns=-\r\nc=IN IP6 2001:db8:1::10\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
	viaUA6 := "SIP/2.0/UDP [2001:db8:1::10]:5074;branch=z9hG4bK-6"

	_, act, err := r.Request(ctx, nil, msg(t, "INVITE sip:b@[2001:db8:fe::2] SIP/2.0", viaUA6, "", public6), up, false, rtpengine.IPv6)
	require.NoError(t, err)
	require.Equal(t, None, act, "public peers of one family: left alone")

	_, act, err = r.Request(ctx, nil, msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", viaUA6, "", public6), up, false, rtpengine.IPv4)
	require.NoError(t, err)
	require.Equal(t, Offered, act, "an IPv6 offer read by an IPv4 UA: bridged")
	require.Contains(t, srv.last(), "14:address family3:IP4")

	via := r.AppendViaMark([]byte("SIP/2.0/UDP "+self6.String()+";branch=z9hG4bKnp1"), msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", viaUA6, "", public6), Offered)
	ok := msg(t, "SIP/2.0 200 OK", string(via)+"\r\nVia: "+viaUA6, ";tag=tt", sdpBody)
	_, act, err = r.Response(ctx, nil, ok, ua, true, rtpengine.IPv6)
	require.NoError(t, err)
	require.Equal(t, Answered, act, "the mark at the edge's IPv6 address is the edge's")
	require.Contains(t, srv.last(), "14:address family3:IP6")
}

// TestFailedReinvite: a failure answer to a re-INVITE (491, 488, ...: any
// final answer of 300 and above to an INVITE with a To tag) leaves the
// established call's session alone; one to the dialog-creating INVITE
// deletes it. The mark says which the request was, under the signature.
func TestFailedReinvite(t *testing.T) {
	t.Parallel()
	r, srv := newRelay(t, okSDP, time.Second)
	ctx := context.Background()
	const route = "\r\nRoute: <sip:203.0.113.3:5060;lr;nat=yes>"
	reinvite := msg(t, "INVITE sip:a@192.168.1.10:5070 SIP/2.0"+route, "SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKr", ";tag=tt", sdpBody)
	_, act, err := r.Request(ctx, nil, reinvite, up, false, "")
	require.NoError(t, err)
	require.Equal(t, Offered, act)
	via := string(r.AppendViaMark([]byte("SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp9"), reinvite, act))
	require.Contains(t, via, ";rtpengine=reoffer-", "the mark of a request inside a dialog")
	lateRe := msg(t, "INVITE sip:a@192.168.1.10:5070 SIP/2.0"+route, "SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKr2", ";tag=tt", "")
	_, act, err = r.Request(ctx, nil, lateRe, up, false, "")
	require.NoError(t, err)
	require.Equal(t, Late, act)
	lateVia := string(r.AppendViaMark([]byte("SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp8"), lateRe, act))
	require.Contains(t, lateVia, ";rtpengine=relate-")

	for _, tc := range []struct{ start, via string }{
		{"SIP/2.0 491 Request Pending", via},
		{"SIP/2.0 488 Not Acceptable Here", via},
		{"SIP/2.0 500 Server Internal Error", via},
		{"SIP/2.0 603 Decline", via},
		{"SIP/2.0 302 Moved Temporarily", via},
		{"SIP/2.0 488 Not Acceptable Here", lateVia},
	} {
		before, st := srv.count(), r.Stats()
		_, act, err := r.Response(ctx, nil, msg(t, tc.start, tc.via, ";tag=tt", ""), ua, true, "")
		require.NoError(t, err, tc.start)
		require.Equal(t, None, act, tc.start)
		require.Equal(t, before, srv.count(), "%s: rtpengine heard of it", tc.start)
		require.Equal(t, st.Deletes, r.Stats().Deletes, tc.start)
		require.Equal(t, st.Kept+1, r.Stats().Kept, tc.start)
	}
	require.True(t, r.set.Has([]byte("call-1")), "the call lives on")

	// a 200 to the re-INVITE is still its answer
	_, act, err = r.Response(ctx, nil, msg(t, "SIP/2.0 200 OK", via, ";tag=tt", sdpBody), ua, true, "")
	require.NoError(t, err)
	require.Equal(t, Answered, act)

	// the re-INVITE's mark cannot be passed off as the initial INVITE's
	forged := strings.Replace(via, "=reoffer-", "=offer-", 1)
	_, act, err = r.Response(ctx, nil, msg(t, "SIP/2.0 488 Not Acceptable Here", forged, ";tag=tt", ""), ua, true, "")
	require.ErrorIs(t, err, ErrForged)
	require.Equal(t, None, act)

	// a failure answer to the dialog-creating INVITE still ends the call
	_, act, err = r.Response(ctx, nil, msg(t, "SIP/2.0 486 Busy Here", signedVia(t, r, "z9hG4bKnp1", Offered), ";tag=tt", ""), up, false, "")
	require.NoError(t, err)
	require.Equal(t, Deleted, act)
	require.Contains(t, srv.last(), "6:delete")
	require.False(t, r.set.Has([]byte("call-1")))
}
