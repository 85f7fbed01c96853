package sipmsg

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAppendRegisterOutbound(t *testing.T) {
	t.Parallel()
	const urn = "urn:uuid:00000000-0000-1000-8000-000A95A0E128"
	tests := []struct {
		name    string
		tr      Transport
		ob      Outbound
		contact string
	}{
		{"udp outbound", UDP, Outbound{Instance: urn, RegID: 1},
			`<sip:alice@192.168.1.10:5062;ob>;+sip.instance="<` + urn + `>";reg-id=1`},
		{"tcp outbound", TCP, Outbound{Instance: urn, RegID: 2},
			`<sip:alice@192.168.1.10:5062;transport=tcp;ob>;+sip.instance="<` + urn + `>";reg-id=2`},
		{"tls is sips", TLS, Outbound{Instance: urn, RegID: 1},
			`<sips:alice@192.168.1.10:5062;ob>;+sip.instance="<` + urn + `>";reg-id=1`},
		{"plain", TCP, Outbound{}, `<sip:alice@192.168.1.10:5062;transport=tcp>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := AppendRegister(nil, RegisterRequest{
				Registrar: "sip:example.com", AoR: "sip:alice@example.com", User: "alice",
				Contact: netip.MustParseAddrPort("192.168.1.10:5062"), Transport: tt.tr,
				Branch: "1", Tag: "t", CallID: "c", CSeq: 7, Expires: 300 * time.Second, Outbound: tt.ob,
				Extra: "Authorization: Digest x\r\n", Alias: tt.tr != UDP,
			})
			var m Message
			require.NoError(t, m.Parse(b))
			require.True(t, m.IsMethod("REGISTER"))
			c, ok := m.Get(HdrContact)
			require.True(t, ok)
			require.Equal(t, tt.contact, string(c))
			require.Equal(t, tt.ob.Instance != "", m.HasOptionTag(HdrSupported, OptionOutbound))
			require.Equal(t, tt.ob.Instance != "", m.HasOptionTag(HdrSupported, "path"))
			v, err := m.ParseTopVia()
			require.NoError(t, err)
			require.Equal(t, tt.tr, ParseTransport(v.Transport.In(m.Bytes())))
			_, alias := findParam(m.Bytes(), v.Params.Start, v.Params.End, "alias")
			require.Equal(t, tt.tr != UDP, alias, "RFC 5923 alias on streams")
			_, ok = m.GetName("Authorization")
			require.True(t, ok)
		})
	}
}

func TestOutboundAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		headers  string
		require  bool
		timer    time.Duration
		hasTimer bool
	}{
		{"outbound with timer", "Require: outbound\r\nFlow-Timer: 25\r\n", true, 25 * time.Second, true},
		{"list, other case", "Require: path, OutBound\r\n", true, 0, false},
		{"no outbound", "Require: path\r\nFlow-Timer: 0\r\n", false, 0, false},
		{"bad timer", "Flow-Timer: 99999999\r\n", false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m Message
			require.NoError(t, m.Parse([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nCSeq: 1 REGISTER\r\n"+tt.headers+"Content-Length: 0\r\n\r\n")))
			require.Equal(t, tt.require, m.HasOptionTag(HdrRequire, OptionOutbound))
			d, ok := m.FlowTimer()
			require.Equal(t, tt.hasTimer, ok)
			require.Equal(t, tt.timer, d)
		})
	}
}

func TestAppendResponse(t *testing.T) {
	t.Parallel()
	var req Message
	in := "INVITE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 198.51.100.2:5070;branch=z9hG4bK2\r\n" +
		"From: <sip:bob@example.com>;tag=f\r\nTo: <sip:alice@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	require.NoError(t, req.Parse([]byte(in)))
	b, err := AppendResponse(nil, &req, StatusFlowFailed, "Flow Failed", "edge", "")
	require.NoError(t, err)
	var m Message
	require.NoError(t, m.Parse(b))
	require.Equal(t, 430, m.StatusCode())
	require.Equal(t, 2, strings.Count(string(b), "Via: "))
	to, _ := m.Get(HdrTo)
	require.Equal(t, "<sip:alice@example.com>;tag=edge", string(to))
	_, err = AppendResponse(nil, &m, 200, "OK", "", "")
	require.ErrorIs(t, err, ErrNotRequest)
}
