package sdp

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		tests Tests
		where string
	}{
		{"public", "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", 0, "[]"},
		{"session-c", "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n", PrivateSessionConn, "[session-c@session line 4 10.1.1.1]"},
		{"origin", "v=0\no=- 1 1 IN IP4 172.31.0.1\ns=-\nc=IN IP4 203.0.113.5\nt=0 0\n", PrivateOrigin, "[origin@session line 2 172.31.0.1]"},
		{"media-c port 0 still reported", "v=0\r\no=- 1 1 IN IP4 x.example\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nc=IN IP4 100.64.1.1\r\n", PrivateMediaConn, "[media-c@m0 line 6 100.64.1.1]"},
		{"rtcp", "v=0\r\no=- 1 1 IN IP4 x.example\r\ns=-\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\nc=IN IP4 198.51.100.1\r\na=rtcp:7 IN IP6 fe80::2\r\n", PrivateRTCP, "[rtcp@m0 line 7 fe80::2]"},
		{"rtcp port only", "v=0\r\no=- 1 1 IN IP4 x.example\r\ns=-\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\na=rtcp:7\r\n", 0, "[]"},
		{"ice-ufrag", "v=0\r\no=- 1 1 IN IP4 x.example\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\nm=audio 5 RTP/AVP 0\r\na=candidate:1 1 UDP 1 10.0.0.1 5 typ host\r\n", ICE, "[ice@session line 5]"},
		{"hold not private", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n", 0, "[]"},
		{"loopback", "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nt=0 0\r\n", PrivateOrigin, "[origin@session line 2 ::1]"},
		{"unreadable lines ignored", "v=0\r\no=short\r\nc=IN\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\na=rtcp:x\r\na=rtcp\r\n", 0, "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Check([]byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.tests, r.Tests)
			require.Equal(t, tc.tests&PrivateAny != 0, r.Behind())
			require.Contains(t, r.String(), tc.where)
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	pub := &Options{Public: labPublic}
	for _, tc := range []struct {
		name string
		body string
		opts *Options
		is   error
	}{
		{"empty", "", pub, ErrMalformed},
		{"not sdp", "INVITE sip:x SIP/2.0\r\n", pub, ErrMalformed},
		{"bad m port", "v=0\r\nm=audio x RTP/AVP 0\r\n", pub, ErrMalformed},
		{"m port range", "v=0\r\nm=audio 70000 RTP/AVP 0\r\n", pub, ErrMalformed},
		{"m short", "v=0\r\nm=audio\r\n", pub, ErrMalformed},
		{"nil opts", "v=0\r\n", nil, ErrBadOptions},
		{"no public", "v=0\r\n", &Options{}, ErrBadOptions},
		{"unspecified public", "v=0\r\n", &Options{Public: netip.IPv4Unspecified()}, ErrBadOptions},
		{"multicast public", "v=0\r\n", &Options{Public: netip.MustParseAddr("224.0.0.1")}, ErrBadOptions},
		{"marker not a=", "v=0\r\n", &Options{Public: labPublic, Marker: "x=1"}, ErrBadOptions},
		{"marker CRLF", "v=0\r\n", &Options{Public: labPublic, Marker: "a=x\r\na=y"}, ErrBadOptions},
		{"too large", "v=0\r\n" + string(make([]byte, MaxBodySize)), pub, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := []byte("keep")
			out, _, err := AppendRewrite(dst, []byte(tc.body), tc.opts)
			require.ErrorIs(t, err, tc.is)
			require.Equal(t, "keep", string(out))
		})
	}
	_, _, err := AppendRewrite(nil, []byte("v=0\r\nm=audio x RTP/AVP 0\r\n"), pub)
	var se *SyntaxError
	require.True(t, errors.As(err, &se))
	require.Equal(t, 2, se.Line)
	require.Equal(t, "m=", se.Field)
	require.Equal(t, "sdp: line 2: malformed m=: want <media> <port> <proto> <fmt>", err.Error())
}

func TestPublicMappedAndZone(t *testing.T) {
	t.Parallel()
	body := []byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n")
	out, _, err := AppendRewrite(nil, body, &Options{Public: netip.MustParseAddr("::ffff:203.0.113.1")})
	require.NoError(t, err)
	require.Contains(t, string(out), "c=IN IP4 203.0.113.1\r\n")
	out, _, err = AppendRewrite(nil, body, &Options{Public: netip.MustParseAddr("2001:db8::1%eth0")})
	require.NoError(t, err)
	require.Contains(t, string(out), "c=IN IP6 2001:db8::1\r\n")
}

func TestAllKeepsPublicAndHold(t *testing.T) {
	t.Parallel()
	body := []byte("v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 203.0.113.1\r\nm=audio 2 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\n")
	out, res, err := AppendRewrite(nil, body, &Options{Public: labPublic, All: true, Origin: true, Ports: []PortMap{{1, 11}, {2, 22}}})
	require.NoError(t, err)
	require.Equal(t, "v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 203.0.113.1\r\nm=audio 22 RTP/AVP 0\r\nc=IN IP4 203.0.113.1\r\n", string(out))
	require.Equal(t, 3, res.Edits)
	require.Zero(t, res.Tests)
}

func TestResultJSONAndTruncation(t *testing.T) {
	t.Parallel()
	body := []byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n")
	for i := 0; i < MaxFindings+2; i++ {
		body = append(body, "m=audio 5 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n"...)
	}
	r, err := Check(body)
	require.NoError(t, err)
	require.True(t, r.Truncated)
	require.Len(t, slices.Collect(r.Findings()), MaxFindings)
	require.Contains(t, r.String(), ", ...]")
	j, err := json.Marshal(r)
	require.NoError(t, err)
	require.Contains(t, string(j), `"tests":"media-c|origin"`)
	require.Contains(t, string(j), `{"test":"origin","media":-1,"line":2,"addr":"10.0.0.1"}`)
	require.Equal(t, "none", Tests(0).String())
	require.Equal(t, "ice|0x80", (ICE | 0x80).String())
}

func TestAppendRewriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	for _, tc := range goldenCases {
		in := readGolden(t, tc.in+".sdp")
		dst := make([]byte, 0, 4096)
		n := testing.AllocsPerRun(50, func() {
			var err error
			_, _, err = AppendRewrite(dst[:0], in, &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, n, tc.name)
		n = testing.AllocsPerRun(50, func() { _, _ = Check(in) })
		require.Zero(t, n, tc.name)
		n = testing.AllocsPerRun(50, func() { _, _ = CheckFrom(in, labPublic) })
		require.Zero(t, n, tc.name)
	}
}

func TestCheckFrom(t *testing.T) {
	t.Parallel()
	const head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n"
	src := netip.MustParseAddr("203.0.113.1")
	tests := []struct {
		name    string
		body    string
		src     netip.Addr
		differs []string // the c= addresses that fire ConnDiffers, in order
	}{
		{"same as source", head + "c=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", src, nil},
		{"mapped source", head + "c=IN IP4 203.0.113.1\r\nt=0 0\r\n", netip.MustParseAddr("::ffff:203.0.113.1"), nil},
		{"private session c=", head + "c=IN IP4 10.0.0.1\r\nt=0 0\r\n", src, []string{"10.0.0.1"}},
		{"public other media c=", head + "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 198.51.100.2\r\nm=video 0 RTP/AVP 31\r\nc=IN IP6 2001:db8::1\r\n", src,
			[]string{"198.51.100.2", "2001:db8::1"}},
		{"hold, multicast and names never differ", head + "c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 233.252.0.1/127\r\nm=audio 4002 RTP/AVP 0\r\nc=IN IP4 host.example.com\r\nm=audio 4004 RTP/AVP 0\r\nc=IN IP6 ::\r\n", src, nil},
		{"o= is not c=", head + "t=0 0\r\n", src, nil},
		{"no source: Check", head + "c=IN IP4 10.0.0.1\r\nt=0 0\r\n", netip.Addr{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := CheckFrom([]byte(tt.body), tt.src)
			require.NoError(t, err)
			var got []string
			for f := range res.Findings() {
				if f.Test == ConnDiffers {
					got = append(got, f.Addr.String())
				}
			}
			require.Equal(t, tt.differs, got)
			require.Equal(t, len(tt.differs) > 0, res.Tests&ConnDiffers != 0)
			chk, err := Check([]byte(tt.body))
			require.NoError(t, err)
			require.Equal(t, chk.Tests, res.Tests&^ConnDiffers, "the other tests are Check's")
		})
	}
	_, err := CheckFrom([]byte("x=1"), src)
	require.ErrorIs(t, err, ErrMalformed)
}

// TestOptionsDoNotEscape: Options built per call on the caller's stack (as
// sipmsg does) cost no allocation either.
func TestOptionsDoNotEscape(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	in := readGolden(t, "baresip.sent.sdp")
	dst := make([]byte, 0, 4096)
	n := testing.AllocsPerRun(50, func() {
		opts := Options{Public: labPublic, Origin: true, Marker: "a=nortpproxy:yes"}
		if _, _, err := AppendRewrite(dst[:0], in, &opts); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, n)
}
