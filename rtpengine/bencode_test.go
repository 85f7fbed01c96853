package rtpengine

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	var d Decoder
	v, err := d.Decode([]byte("d6:result2:ok3:sdp5:v=0\r\n5:flagsl3:abc1:xe3:numi-42e4:dictd1:ai0eee"))
	require.NoError(t, err)
	require.Equal(t, Dict, v.Kind())
	require.Equal(t, 5, v.Len())
	require.True(t, v.Get("result").Is("ok"))
	require.Equal(t, "v=0\r\n", string(v.Get("sdp").Bytes()))
	n, ok := v.Get("num").Int()
	require.True(t, ok)
	require.Equal(t, int64(-42), n)
	fl := v.Get("flags")
	require.Equal(t, List, fl.Kind())
	var got []string
	for it := fl.Iter(); it.Next(); {
		got = append(got, string(it.Value().Bytes()))
	}
	require.Equal(t, []string{"abc", "x"}, got)
	z, ok := v.Get("dict").Get("a").Int()
	require.True(t, ok)
	require.Zero(t, z)
	require.Equal(t, "d1:ai0ee", string(v.Get("dict").Raw()))
	it := fl.Iter()
	require.Equal(t, Invalid, it.Value().Kind(), "no element before Next")
	require.True(t, it.Next())
	require.Equal(t, "3:abc", string(it.Value().Raw()))
	require.Equal(t, Invalid, v.Get("missing").Get("deeper").Kind(), "lookups on missing values stay invalid")
	require.Equal(t, Invalid, v.Get("num").Get("x").Kind())
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		offset int
		reason string
	}{
		{"", 0, "unexpected end of input"},
		{"x", 0, "unexpected byte"},
		{"i42", 3, "end of input in a number"},
		{"i4x2e", 2, "unexpected byte 'x' in a number"},
		{"ie", 1, "missing digits"},
		{"i-0e", 1, "canonical"},
		{"i03e", 1, "canonical"},
		{"i99999999999999999999e", 19, "overflows"},
		{"5:abc", 2, "past the end"},
		{"-1:a", 0, "unexpected byte '-'"},
		{"d3:abce", 6, "key without a value"},
		{"di1ei2ee", 1, "key is not a string"},
		{"l1:a", 4, "unterminated list"},
		{"1:ab", 3, "trailing data"},
		{strings.Repeat("l", 17) + strings.Repeat("e", 17), 16, "nested deeper than 16"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d Decoder
			_, err := d.Decode([]byte(tc.in))
			require.ErrorIs(t, err, ErrBencode)
			var be *BencodeError
			require.True(t, errors.As(err, &be))
			require.Equal(t, tc.offset, be.Offset, "%v", err)
			require.Contains(t, be.Reason, tc.reason)
		})
	}
	d := Decoder{MaxNodes: 3}
	_, err := d.Decode([]byte("li1ei2ei3ee"))
	require.ErrorContains(t, err, "more than 3 values")
}

func TestAppendRequest(t *testing.T) {
	t.Parallel()
	r := &Request{Command: Offer, CallID: []byte("c1"), FromTag: []byte("f"), SDP: []byte("v=0\r\n"),
		Source: netip.MustParseAddr("203.0.113.1"),
		Options: Options{SIPSource: true, Symmetric: true, ReplaceOrigin: true, ReplaceSessionConnection: true,
			ICE: ICERemove, Direction: [2]string{"internal", "external"}, Family: IPv4}}
	b := AppendRequest(nil, []byte("ck1"), r)
	require.Equal(t, "ck1 d7:command5:offer7:call-id2:c18:from-tag1:f3:sdp5:v=0\r\n"+
		"5:flagsl18:SIP-source-address9:symmetrice7:replacel6:origin18:session-connectione3:ICE6:remove"+
		"9:directionl8:internal8:externale14:address family3:IP413:received-froml3:IP411:203.0.113.1ee", string(b))
	var d Decoder
	v, err := d.Decode(b[4:])
	require.NoError(t, err)
	require.True(t, v.Get("command").Is("offer"))

	b = AppendRequest(b[:0], []byte("x"), &Request{Command: Ping})
	require.Equal(t, "x d7:command4:pinge", string(b))
	b = AppendRequest(b[:0], []byte("x"), &Request{Command: Delete, CallID: []byte("c"), FromTag: []byte("f"), SDP: []byte("ignored")})
	require.Equal(t, "x d7:command6:delete7:call-id1:c8:from-tag1:fe", string(b))
}

func TestParseReply(t *testing.T) {
	t.Parallel()
	var d Decoder
	r, err := ParseReply(&d, Offer, []byte("d6:result2:ok3:sdp3:v=07:warning4:hmm!e"), []byte("pre:"))
	require.NoError(t, err)
	require.Equal(t, "ok", r.Result)
	require.Equal(t, "pre:v=0", string(r.SDP))
	require.Equal(t, "hmm!", r.Warning)

	r, err = ParseReply(&d, Query, []byte("d7:createdi1700000000e6:totalsd3:RTPd7:packetsi10e5:bytesi1720e6:errorsi0ee4:RTCPd7:packetsi2eee6:result2:oke"), nil)
	require.NoError(t, err)
	require.Equal(t, Counters{Packets: 10, Bytes: 1720}, r.RTP)
	require.Equal(t, int64(2), r.RTCP.Packets)
	require.Equal(t, int64(1700000000), r.Created)

	_, err = ParseReply(&d, Offer, []byte("d6:result5:error12:error-reason15:Unknown call-ide"), nil)
	var er *ErrorReply
	require.ErrorAs(t, err, &er)
	require.ErrorIs(t, err, ErrRejected)
	require.Equal(t, "Unknown call-id", er.Reason)

	for _, bad := range []string{"d6:result2:ok", "le", "d3:sdp1:xe", "d6:result2:oke"} {
		_, err = ParseReply(&d, Offer, []byte(bad), nil)
		require.ErrorIs(t, err, ErrMalformedReply, bad)
	}
}

func TestDecodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	msg := []byte("d6:result2:ok3:sdp5:v=0\r\n5:flagsl3:abc1:xee")
	var d Decoder
	_, _ = d.Decode(msg)
	sdp := make([]byte, 0, 64)
	n := testing.AllocsPerRun(100, func() {
		r, err := ParseReply(&d, Offer, msg, sdp[:0])
		if err != nil || r.Result != "ok" {
			t.Fatal(err)
		}
	})
	require.Zero(t, n)
}
