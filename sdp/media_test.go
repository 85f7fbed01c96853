package sdp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMediaAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, media, want string
	}{
		{"session c=", "v=0\r\nc=IN IP4 198.51.100.2\r\nm=audio 6000 RTP/AVP 0\r\n", "audio", "198.51.100.2:6000"},
		{"stream c= wins", "v=0\r\nc=IN IP4 198.51.100.2\r\nm=audio 6000 RTP/AVP 0\r\nc=IN IP4 203.0.113.9\r\n", "audio", "203.0.113.9:6000"},
		{"second stream", "v=0\r\nc=IN IP4 198.51.100.2\r\nm=video 7000 RTP/AVP 96\r\nc=IN IP4 192.0.2.1\r\nm=audio 6002/2 RTP/AVP 0\r\n", "audio", "198.51.100.2:6002"},
		{"IPv6", "v=0\nc=IN IP6 2001:db8::1\nm=audio 5004 RTP/AVP 0\n", "audio", "[2001:db8::1]:5004"},
		{"refused stream", "v=0\r\nc=IN IP4 198.51.100.2\r\nm=audio 0 RTP/AVP 0\r\n", "audio", ""},
		{"no stream", "v=0\r\nc=IN IP4 198.51.100.2\r\nm=video 7000 RTP/AVP 96\r\n", "audio", ""},
		{"no address", "v=0\r\nm=audio 6000 RTP/AVP 0\r\n", "audio", ""},
		{"fqdn", "v=0\r\nc=IN IP4 host.example\r\nm=audio 6000 RTP/AVP 0\r\n", "audio", ""},
		{"audiox is not audio", "v=0\r\nc=IN IP4 198.51.100.2\r\nm=audiox 6000 RTP/AVP 0\r\n", "audio", ""},
		{"garbage", "\x00\x01m=\r\nc=", "audio", ""},
	} {
		got, err := MediaAddr([]byte(tc.body), tc.media)
		if tc.want == "" {
			require.ErrorIs(t, err, ErrNoMedia, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, netip.MustParseAddrPort(tc.want), got, tc.name)
	}
}

func FuzzMediaAddr(f *testing.F) {
	f.Add([]byte("v=0\r\nc=IN IP4 198.51.100.2\r\nm=audio 6000 RTP/AVP 0\r\n"))
	f.Add([]byte("v=0\nm=audio 1/2 x\nc=IN IP6 ::1\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := MediaAddr(body, "audio")
		if err == nil && (!a.Addr().IsValid() || a.Port() == 0) {
			t.Fatalf("accepted %v from %q", a, body)
		}
	})
}
