package sipmsg

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const proxyPrefix = "z9hG4bKsp"

// signedRequest parses a request from a UA (top Via branch z9hG4bK1,
// Call-ID c1, From tag a, CSeq "1 INVITE" unless method says otherwise).
func signedRequest(t testing.TB, method, cseq string) *Message {
	var m Message
	s := method + " sip:bob@198.51.100.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\n" +
		"From: <sip:alice@x>;tag=a\r\nTo: <sip:bob@x>\r\nCall-ID: c1\r\nCSeq: " + cseq + "\r\nContent-Length: 0\r\n\r\n"
	if err := m.Parse([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return &m
}

// signedResponse is a response with top Via top and second Via second.
func signedResponse(t testing.TB, top, second, callID, fromTag, cseq string) *Message {
	var m Message
	s := "SIP/2.0 200 OK\r\nVia: " + top + "\r\n"
	if second != "" {
		s += "Via: " + second + "\r\n"
	}
	s += "From: <sip:alice@x>;tag=" + fromTag + "\r\nTo: <sip:bob@x>;tag=b\r\nCall-ID: " + callID + "\r\nCSeq: " + cseq + "\r\nContent-Length: 0\r\n\r\n"
	if err := m.Parse([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return &m
}

// TestSignerBranch: the branch a stateless proxy signs for a request is
// the same for its CANCEL and the ACK of a failure answer, differs between
// requests, and is taken back only on a response to that request: not on
// a forged one (made up, copied to another call, transaction or branch) nor
// one signed under another key (before a restart).
func TestSignerBranch(t *testing.T) {
	t.Parallel()
	s := NewSigner([]byte("proxy key"))
	invite := signedRequest(t, "INVITE", "1 INVITE")
	branch := string(s.AppendBranch(nil, proxyPrefix, invite))
	require.Regexp(t, "^"+proxyPrefix+"[0-9a-f]{16}$", branch)
	require.Equal(t, branch, string(s.AppendBranch(nil, proxyPrefix, signedRequest(t, "CANCEL", "1 CANCEL"))), "a CANCEL's branch is its INVITE's (RFC 3261 §16.11)")
	require.Equal(t, branch, string(s.AppendBranch(nil, proxyPrefix, signedRequest(t, "ACK", "1 ACK"))), "so is the ACK of a failure answer")
	require.NotEqual(t, branch, string(s.AppendBranch(nil, proxyPrefix, signedRequest(t, "INVITE", "2 INVITE"))), "another request, another branch")

	top := "SIP/2.0/UDP 203.0.113.3:5060;branch=" + branch
	const second = "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport=40000;received=203.0.113.1"
	other := string(NewSigner([]byte("another key")).AppendBranch(nil, proxyPrefix, invite))
	for _, tc := range []struct {
		name                               string
		top, second, callID, fromTag, cseq string
		own                                bool
	}{
		{name: "the answer", top: top, second: second, own: true},
		{name: "the answer, the mark of a media relay after the branch", top: top + ";rtpengine=offer-0123456789abcdef", second: second, own: true},
		{name: "the answer to its CANCEL", top: top, second: second, cseq: "1 CANCEL", own: true},
		{name: "made-up branch", top: "SIP/2.0/UDP 203.0.113.3:5060;branch=" + proxyPrefix + "0123456789abcdef", second: second},
		{name: "another prefix", top: "SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKxx" + branch[len(proxyPrefix):], second: second},
		{name: "short", top: top[:len(top)-2], second: second},
		{name: "not hex", top: top[:len(top)-1] + "z", second: second},
		{name: "no branch", top: "SIP/2.0/UDP 203.0.113.3:5060", second: second},
		{name: "copied to another call", top: top, second: second, callID: "c2"},
		{name: "copied to another From tag", top: top, second: second, fromTag: "z"},
		{name: "copied to another transaction", top: top, second: second, cseq: "2 INVITE"},
		{name: "copied under another hop's branch", top: top, second: strings.Replace(second, "z9hG4bK1", "z9hG4bK2", 1)},
		{name: "no second Via", top: top},
		{name: "signed under another key (before a restart)", top: "SIP/2.0/UDP 203.0.113.3:5060;branch=" + other, second: second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			callID, fromTag, cseq := tc.callID, tc.fromTag, tc.cseq
			if callID == "" {
				callID = "c1"
			}
			if fromTag == "" {
				fromTag = "a"
			}
			if cseq == "" {
				cseq = "1 INVITE"
			}
			require.Equal(t, tc.own, s.OwnBranch(proxyPrefix, signedResponse(t, tc.top, tc.second, callID, fromTag, cseq)))
		})
	}
	require.False(t, s.OwnBranch(proxyPrefix, invite), "a request is no response")
}

// TestSignerNilKey: without a key, a Signer makes a random one: two
// Signers do not take each other's branches.
func TestSignerNilKey(t *testing.T) {
	t.Parallel()
	a, b := NewSigner(nil), NewSigner(nil)
	invite := signedRequest(t, "INVITE", "1 INVITE")
	top := "SIP/2.0/UDP 203.0.113.3:5060;branch=" + string(a.AppendBranch(nil, proxyPrefix, invite))
	resp := signedResponse(t, top, "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "c1", "a", "1 INVITE")
	require.True(t, a.OwnBranch(proxyPrefix, resp))
	require.False(t, b.OwnBranch(proxyPrefix, resp))
}

// TestSignerAllocs: signing a branch and checking one allocate nothing.
func TestSignerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := NewSigner([]byte("k"))
	invite := signedRequest(t, "INVITE", "1 INVITE")
	buf := make([]byte, 0, 64)
	top := "SIP/2.0/UDP 203.0.113.3:5060;branch=" + string(s.AppendBranch(nil, proxyPrefix, invite))
	resp := signedResponse(t, top, "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "c1", "a", "1 INVITE")
	require.Zero(t, testing.AllocsPerRun(100, func() {
		buf = s.AppendBranch(buf[:0], proxyPrefix, invite)
		if !s.OwnBranch(proxyPrefix, resp) {
			panic("own branch refused")
		}
	}))
}

// FuzzOwnBranch: a response the fuzzer changes is taken for the answer to
// the signed request only if the signed fields (the second Via's branch,
// Call-ID, From tag, CSeq number) and the branch are the request's; nothing
// panics.
func FuzzOwnBranch(f *testing.F) {
	s := NewSigner([]byte("fuzz"))
	invite := signedRequest(f, "INVITE", "1 INVITE")
	branch := string(s.AppendBranch(nil, proxyPrefix, invite))
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.3:5060;branch=" + branch + "\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1\r\n" +
		"From: <sip:alice@x>;tag=a\r\nTo: <sip:bob@x>;tag=b\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 487 Request Terminated\r\nVia: SIP/2.0/UDP 203.0.113.3:5060;branch=" + branch + ";rtpengine=offer-0011223344556677, SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1\r\n" +
		"f: <sip:alice@x>;tag=a\r\nt: <sip:bob@x>;tag=b\r\ni: c1\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if m.Parse(b) != nil || !s.OwnBranch(proxyPrefix, &m) {
			return
		}
		it := m.Values(HdrVia)
		it.Next()
		top, _ := ParseVia(m.buf, it.Span())
		it.Next()
		prev, _ := ParseVia(m.buf, it.Span())
		callID, _ := m.Get(HdrCallID)
		tag, _ := m.Tag(HdrFrom)
		if got := top.Branch.Value.In(m.buf); string(got) != branch || string(prev.Branch.Value.In(m.buf)) != "z9hG4bK1" ||
			string(callID) != "c1" || string(tag) != "a" || string(m.cseqNumber()) != "1" {
			t.Fatalf("a changed response passed: branch %q, previous %q, call %q, tag %q, cseq %q",
				got, prev.Branch.Value.In(m.buf), callID, tag, m.cseqNumber())
		}
	})
}

// BenchmarkSigner: a stateless proxy's cost per request (AppendBranch) and
// per response (OwnBranch).
func BenchmarkSigner(b *testing.B) {
	s := NewSigner([]byte("k"))
	invite := signedRequest(b, "INVITE", "1 INVITE")
	buf := make([]byte, 0, 64)
	top := "SIP/2.0/UDP 203.0.113.3:5060;branch=" + string(s.AppendBranch(nil, proxyPrefix, invite))
	resp := signedResponse(b, top, "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "c1", "a", "1 INVITE")
	b.Run("AppendBranch", func(b *testing.B) {
		for b.Loop() {
			buf = s.AppendBranch(buf[:0], proxyPrefix, invite)
		}
	})
	b.Run("OwnBranch", func(b *testing.B) {
		for b.Loop() {
			if !s.OwnBranch(proxyPrefix, resp) {
				b.Fatal("refused")
			}
		}
	})
}
