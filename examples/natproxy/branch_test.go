package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sipmsg"
)

// ownVia is the Via the proxy adds to the request req (its branch
// signed for it).
func ownVia(t *testing.T, p *Proxy, req string) string {
	t.Helper()
	var m sipmsg.Message
	require.NoError(t, m.Parse([]byte(req)))
	return string(p.via(&m, sipmsg.UDP, self))
}

// TestForeignResponse: the proxy forwards a response only when its top Via
// carries the branch the proxy made for the request it answers: a response
// whose branch is made up, copied to another call or transaction, or was
// made by the proxy before a restart (another key) is dropped and counted;
// proxies that share ViaKey take each other's.
func TestForeignResponse(t *testing.T) {
	t.Parallel()
	p := testProxy(t, Config{ViaKey: []byte("edge key")})
	const invite = "INVITE sip:bob@203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\n" +
		"From: <sip:alice@203.0.113.2>;tag=a\r\nTo: <sip:bob@203.0.113.2>\r\nCall-ID: b-1\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:alice@192.168.1.10:5070>\r\nContent-Length: 0\r\n\r\n"
	var m sipmsg.Message
	out, dst, err := p.Handle(context.Background(), nil, &m, []byte(invite), ua)
	require.NoError(t, err)
	require.Equal(t, up, dst)
	require.NoError(t, m.Parse(out))
	it := m.Values(sipmsg.HdrVia)
	require.True(t, it.Next())
	own := string(it.Bytes())
	require.True(t, it.Next())
	uaVia := string(it.Bytes())
	require.Regexp(t, ";branch=z9hG4bKnp[0-9a-f]{16}$", own)

	response := func(status, top, callID, cseq string) []byte {
		return []byte("SIP/2.0 " + status + "\r\nVia: " + top + "\r\nVia: " + uaVia + "\r\nFrom: <sip:alice@203.0.113.2>;tag=a\r\n" +
			"To: <sip:bob@203.0.113.2>;tag=b\r\nCall-ID: " + callID + "\r\nCSeq: " + cseq + "\r\nContent-Length: 0\r\n\r\n")
	}
	restarted := testProxy(t, Config{}) // a random key, as after a restart without ViaKey
	for _, tc := range []struct {
		name string
		p    *Proxy
		b    []byte
	}{
		{"made-up branch", p, response("200 OK", "SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp0123456789abcdef", "b-1", "1 INVITE")},
		{"no branch", p, response("200 OK", "SIP/2.0/UDP 203.0.113.3:5060", "b-1", "1 INVITE")},
		{"branch copied to another call", p, response("200 OK", own, "victim-2", "1 INVITE")},
		{"branch copied to another transaction", p, response("487 Request Terminated", own, "b-1", "2 INVITE")},
		{"branch copied under another second Via", p, []byte(strings.Replace(string(response("200 OK", own, "b-1", "1 INVITE")), "z9hG4bK1;", "z9hG4bK9;", 1))},
		{"stale: made before a restart", restarted, response("200 OK", own, "b-1", "1 INVITE")},
	} {
		before := tc.p.ForeignResponses()
		out, dst, err := tc.p.Handle(context.Background(), nil, &m, tc.b, up)
		require.ErrorIs(t, err, errForeign, tc.name)
		require.Empty(t, out, tc.name)
		require.False(t, dst.IsValid(), tc.name)
		require.Equal(t, before+1, tc.p.ForeignResponses(), tc.name)
	}

	for _, tc := range []struct {
		name string
		p    *Proxy
		b    []byte
	}{
		{"the answer", p, response("200 OK", own, "b-1", "1 INVITE")},
		{"the answer to its CANCEL (same branch)", p, response("200 OK", own, "b-1", "1 CANCEL")},
		{"the answer at a proxy sharing the key", testProxy(t, Config{ViaKey: []byte("edge key")}), response("180 Ringing", own, "b-1", "1 INVITE")},
	} {
		_, dst, err := tc.p.Handle(context.Background(), nil, &m, tc.b, up)
		require.NoError(t, err, tc.name)
		require.Equal(t, ua, dst, tc.name)
	}
	require.Equal(t, uint64(5), p.ForeignResponses())
}
