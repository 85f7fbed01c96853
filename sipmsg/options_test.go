package sipmsg

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    OptionsRequest
		want string
	}{
		{
			name: "minimal udp",
			r: OptionsRequest{
				RequestURI: "sip:203.0.113.2", From: "sip:alice@example.com",
				SentBy: netip.MustParseAddrPort("192.168.1.10:5060"),
				Branch: "ka1", CallID: "c1@192.168.1.10", CSeq: 7,
			},
			want: "OPTIONS sip:203.0.113.2 SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKka1;rport\r\n" +
				"Max-Forwards: 70\r\n" +
				"From: <sip:alice@example.com>;tag=ka1\r\n" +
				"To: <sip:203.0.113.2>\r\n" +
				"Call-ID: c1@192.168.1.10\r\n" +
				"CSeq: 7 OPTIONS\r\n" +
				"Content-Length: 0\r\n\r\n",
		},
		{
			name: "ipv6 tcp contact",
			r: OptionsRequest{
				RequestURI: "sip:[2001:db8::2]", From: "sip:bob@example.com", FromTag: "t9",
				To: "sip:bob@example.com", SentBy: netip.MustParseAddrPort("[2001:db8::10]:5062"),
				Transport: "tcp", Branch: "z9hG4bKabc", NoRport: true, CallID: "x", CSeq: 1,
				Contact: "sip:bob@[2001:db8::10]:5062;transport=tcp", MaxFwd: 5, UserAgent: "sipnat",
			},
			want: "OPTIONS sip:[2001:db8::2] SIP/2.0\r\n" +
				"Via: SIP/2.0/TCP [2001:db8::10]:5062;branch=z9hG4bKabc\r\n" +
				"Max-Forwards: 5\r\n" +
				"From: <sip:bob@example.com>;tag=t9\r\n" +
				"To: <sip:bob@example.com>\r\n" +
				"Call-ID: x\r\n" +
				"CSeq: 1 OPTIONS\r\n" +
				"Contact: <sip:bob@[2001:db8::10]:5062;transport=tcp>\r\n" +
				"User-Agent: sipnat\r\n" +
				"Content-Length: 0\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := AppendOptions(nil, tt.r)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func TestAppendOptionsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	r := OptionsRequest{RequestURI: "sip:203.0.113.2", From: "sip:alice@example.com",
		SentBy: netip.MustParseAddrPort("192.168.1.10:5060"), Branch: "ka1", CallID: "c1", CSeq: 7}
	buf := make([]byte, 0, 1024)
	n := testing.AllocsPerRun(100, func() { buf = AppendOptions(buf[:0], r) })
	require.Zero(t, n)
}
