package keepalive

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sipmsg"
)

func TestKeepFromVia(t *testing.T) {
	t.Parallel()
	tests := []struct {
		params string
		want   time.Duration
		ok     bool
	}{
		{";branch=z9hG4bK1;keep=30", 30 * time.Second, true},
		{";keep=15;rport=5060", 15 * time.Second, true},
		{";KEEP = 20 ;received=203.0.113.1", 20 * time.Second, true},
		{";branch=z9hG4bK1;keep", 0, false}, // the UA's offer, no value
		{";keep=0", 0, false},               // RFC 6223: non-zero
		{";keep=abc", 0, false},             //
		{";keep=12x", 0, false},             //
		{";keep=86401", 0, false},           // out of bound
		{";keep=99999999999999999999", 0, false},
		{";keepalive=10", 0, false},
		{`;x="a;keep=5";keep=7`, 7 * time.Second, true},
		{`;x="unterminated;keep=5`, 0, false},
		{"", 0, false},
		{";", 0, false},
		{";keep=", 0, false},
	}
	for _, tt := range tests {
		got, ok := KeepFromVia([]byte(tt.params))
		require.Equal(t, tt.ok, ok, "%q", tt.params)
		require.Equal(t, tt.want, got, "%q", tt.params)
	}
}

func TestKeepFromResponse(t *testing.T) {
	t.Parallel()
	resp := "SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-1;rport=5060;received=203.0.113.1;keep=30\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-2;keep=5\r\n" +
		"From: <sip:alice@203.0.113.2>;tag=a\r\nTo: <sip:alice@203.0.113.2>;tag=b\r\n" +
		"Call-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
	var m sipmsg.Message
	require.NoError(t, m.Parse([]byte(resp)))
	d, ok := KeepFromResponse(&m)
	require.True(t, ok)
	require.Equal(t, 30*time.Second, d)
	require.Equal(t, 30*time.Second, Timing{Negotiated: d}.Base(false))
}

func FuzzKeepFromVia(f *testing.F) {
	for _, s := range []string{";keep=30", ";branch=z9hG4bK1;keep", `;x="\";keep=1";keep=2`, ";KeEp = 86400 ", ";keep=1;keep=2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := KeepFromVia(b)
		if ok && (d < time.Second || d > maxKeep*time.Second || d%time.Second != 0) {
			t.Fatalf("KeepFromVia(%q) = %v", b, d)
		}
		if !ok && d != 0 {
			t.Fatalf("KeepFromVia(%q) = %v, false", b, d)
		}
	})
}

func TestOptionsBuilder(t *testing.T) {
	t.Parallel()
	build := OptionsBuilder(sipmsg.OptionsRequest{
		RequestURI: "sip:203.0.113.2", From: "sip:alice@203.0.113.2",
		SentBy: netip.MustParseAddrPort("192.168.1.10:5060"), Branch: "ka", CallID: "ka-1",
	})
	var m sipmsg.Message
	for n := uint32(1); n <= 3; n++ {
		b := build(nil, n)
		require.NoError(t, m.Parse(b))
		require.True(t, m.IsMethod("OPTIONS"))
		v, err := m.ParseTopVia()
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("z9hG4bKka.%d", n), string(v.Branch.Value.In(b)), "a new transaction per keep-alive")
		cseq, ok := m.Get(sipmsg.HdrCSeq)
		require.True(t, ok)
		require.Equal(t, fmt.Sprintf("%d OPTIONS", n), string(cseq))
	}
}
