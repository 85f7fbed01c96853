package sipedge

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/sipmsg"
)

// TestForgedAnswer: a response that carries the edge's Via mark is acted on
// only when the edge signed that mark for the very request it answers; a
// forged one (made up, unsigned, copied from another call or transaction,
// or signed by another edge) is refused, logged and counted, and rtpengine
// hears nothing of it: it can neither move the call's media nor end it.
func TestForgedAnswer(t *testing.T) {
	t.Parallel()
	r, srv := newRelay(t, okSDP, time.Second)
	r.signer = sipmsg.NewSigner([]byte("the edge's key")) // a fixed signature (with letters: the upper-case case)
	var logs netlab.Output
	r.log = slog.New(slog.NewTextHandler(&logs, nil))
	other, err := New(Config{Set: r.set, Self: self, Key: []byte("another edge")})
	require.NoError(t, err)
	const branch = "z9hG4bKnp1"
	good := signedVia(t, r, branch, Offered)
	sig := good[strings.LastIndexByte(good, '-')+1:]
	require.NotEqual(t, sig, strings.ToUpper(sig))
	const attacker = "SDP of the attacker"
	for _, tc := range []struct {
		name           string
		start, via, hd string // status line, top Via, headers after To
		callID, cseq   string
	}{
		{name: "unsigned mark", start: "SIP/2.0 200 OK", via: "SIP/2.0/UDP 203.0.113.3:5060;branch=" + branch + ";rtpengine=offer"},
		{name: "made-up signature", start: "SIP/2.0 200 OK", via: "SIP/2.0/UDP 203.0.113.3:5060;branch=" + branch + ";rtpengine=offer-0123456789abcdef"},
		{name: "short signature", start: "SIP/2.0 200 OK", via: "SIP/2.0/UDP 203.0.113.3:5060;branch=" + branch + ";rtpengine=offer-" + sig[:8]},
		{name: "signature not hex", start: "SIP/2.0 200 OK", via: "SIP/2.0/UDP 203.0.113.3:5060;branch=" + branch + ";rtpengine=offer-" + strings.Repeat("z", 16)},
		{name: "signature in upper case", start: "SIP/2.0 200 OK", via: strings.Replace(good, sig, strings.ToUpper(sig), 1)},
		{name: "mark copied to another call", start: "SIP/2.0 200 OK", via: good, callID: "call-2"},
		{name: "mark copied to another transaction", start: "SIP/2.0 200 OK", via: good, cseq: "2 INVITE"},
		{name: "mark copied to another branch", start: "SIP/2.0 200 OK", via: strings.Replace(good, branch, "z9hG4bKnp2", 1)},
		{name: "offer mark turned into a late one", start: "SIP/2.0 200 OK", via: strings.Replace(good, "=offer-", "=late-", 1)},
		{name: "another edge's key", start: "SIP/2.0 200 OK", via: string(other.AppendViaMark([]byte("SIP/2.0/UDP 203.0.113.3:5060;branch="+branch), msg(t, "INVITE sip:b@x SIP/2.0", "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "", ""), Offered))},
		{name: "forged 183", start: "SIP/2.0 183 Session Progress", via: "SIP/2.0/UDP 203.0.113.3:5060;branch=" + branch + ";rtpengine=offer"},
		{name: "forged 486 (would delete the call)", start: "SIP/2.0 486 Busy Here", via: "SIP/2.0/UDP 203.0.113.3:5060;branch=" + branch + ";rtpengine=offer-0123456789abcdef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := response(t, tc.start, tc.via, tc.callID, tc.cseq, attacker)
			before, forged := srv.count(), r.Stats().Forged
			body, act, err := r.Response(context.Background(), nil, m, up, true, "")
			require.ErrorIs(t, err, ErrForged)
			require.Equal(t, None, act)
			require.Nil(t, body)
			require.Equal(t, before, srv.count(), "rtpengine heard of a forged response")
			require.Equal(t, forged+1, r.Stats().Forged)
		})
	}
	require.Contains(t, logs.String(), "forged Via mark refused")
	require.Contains(t, logs.String(), "level=WARN")

	// the genuine answer still works, as does its retransmission
	for range 2 {
		body, act, err := r.Response(context.Background(), nil, response(t, "SIP/2.0 200 OK", good, "", "", sdpBody), up, true, "")
		require.NoError(t, err)
		require.Equal(t, Answered, act)
		require.Equal(t, relayed, string(body))
		require.Contains(t, srv.last(), "6:answer")
	}
	require.Equal(t, uint64(12), r.Stats().Forged)
}

// TestMarkedRequestsAnyEdge: requests skip the relay when any edge on the
// way marked them, signed or not (the mark tells an edge on the way took
// part; it gives no power over another call): an INVITE gets Leg, so that
// its answerer is known as a party.
func TestMarkedRequestsAnyEdge(t *testing.T) {
	t.Parallel()
	r, srv := newRelay(t, okSDP, time.Second)
	for _, via := range []string{
		"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKe;rtpengine=offer-0123456789abcdef",
		"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKe;rtpengine=offer",
		"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKe;RTPENGINE=late",
	} {
		m := msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", via+"\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "", sdpBody)
		_, act, err := r.Request(context.Background(), nil, m, ua, true, "")
		require.NoError(t, err)
		require.Equal(t, Leg, act, via)
	}
	require.Zero(t, srv.count())
}

// response builds a response to the INVITE msg builds (call-1, From tag
// ft, CSeq 1 INVITE) unless callID or cseq say otherwise.
func response(t *testing.T, start, via, callID, cseq, body string) *sipmsg.Message {
	t.Helper()
	if callID == "" {
		callID = "call-1"
	}
	if cseq == "" {
		cseq = "1 INVITE"
	}
	var b bytes.Buffer
	b.WriteString(start + "\r\nVia: " + via + "\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1\r\n")
	b.WriteString("From: <sip:a@x>;tag=ft\r\nTo: <sip:b@x>;tag=tt\r\nCall-ID: " + callID + "\r\nCSeq: " + cseq + "\r\n")
	b.WriteString("Content-Type: application/sdp\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body)
	var m sipmsg.Message
	require.NoError(t, m.Parse(b.Bytes()))
	return &m
}

// FuzzOwnMark: a response the fuzzer changes is taken as the edge's own
// only if the signed fields (branch, Call-ID, From tag, CSeq number, mark)
// are those of the request the edge signed; nothing panics.
func FuzzOwnMark(f *testing.F) {
	r, err := New(Config{Set: &rtpengine.Set{}, Self: self, Key: []byte("fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	invite := parse(f, "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=ft\r\nTo: <sip:b@x>\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
	for _, act := range []Action{Offered, Late, Confirm, Deleted, Leg} {
		via := r.AppendViaMark([]byte("SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp1"), invite, act)
		f.Add([]byte("SIP/2.0 200 OK\r\nVia: " + string(via) + "\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=ft\r\nTo: <sip:b@x>;tag=tt\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m sipmsg.Message
		if m.Parse(b) != nil {
			return
		}
		kind, err := r.ownMark(&m)
		if err != nil || kind == "" {
			return
		}
		mk, _ := topMark(&m, self)
		callID, _ := m.Get(sipmsg.HdrCallID)
		tag, _ := m.Tag(sipmsg.HdrFrom)
		v, _ := m.Get(sipmsg.HdrCSeq)
		cseq := v[:len(v)-len(bytes.TrimLeft(v, "0123456789"))] // the number
		if string(mk.branch) != "z9hG4bKnp1" || string(callID) != "call-1" || string(tag) != "ft" || string(cseq) != "1" {
			t.Fatalf("a changed response passed as the edge's own: branch %q call %q tag %q cseq %q", mk.branch, callID, tag, cseq)
		}
	})
}

func parse(f *testing.F, s string) *sipmsg.Message {
	var m sipmsg.Message
	if err := m.Parse([]byte(s)); err != nil {
		f.Fatal(err)
	}
	return &m
}

// TestMarkAllocs: signing a Via and checking a response's mark allocate
// nothing (the HMACs are pooled).
func TestMarkAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r, err := New(Config{Set: &rtpengine.Set{}, Self: self, Key: []byte("k")})
	require.NoError(t, err)
	invite := msg(t, "INVITE sip:b@x SIP/2.0", "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "", "")
	via := make([]byte, 0, 256)
	good := response(t, "SIP/2.0 200 OK", signedVia(t, r, "z9hG4bKnp1", Offered), "", "", "")
	require.Zero(t, testing.AllocsPerRun(100, func() {
		via = r.AppendViaMark(append(via[:0], "SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp1"...), invite, Offered)
		if kind, err := r.ownMark(good); kind != markOffer || err != nil {
			panic("mark not taken")
		}
	}))
}
