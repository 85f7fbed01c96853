package sdp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRewriteNAT64: a peer's IPv4 SDP read by an IPv6-only UA behind a
// NAT64 gets the synthesised IPv6 address (RFC 6052) of every IPv4 unicast
// address in c=, a=rtcp and (with Origin) o=, IN IP4 becoming IN IP6; every
// other byte (hold, multicast, names, IPv6, spacing, LF line ends) stays,
// and a second pass changes nothing.
func TestRewriteNAT64(t *testing.T) {
	t.Parallel()
	in := "v=0\no=bob 1 1 IN IP4 198.51.100.2\ns=-\nc=IN IP4 198.51.100.2\nt=0 0\n" +
		"m=audio 6000 RTP/AVP 0\na=rtcp:6001 IN IP4 198.51.100.3\n" +
		"m=audio 6002 RTP/AVP 0\nc=IN IP4 0.0.0.0\n" +
		"m=video 6004 RTP/AVP 31\nc=IN IP4 233.252.0.1/127\n" +
		"m=video 6006 RTP/AVP 31\nc=IN IP6 2001:db8::5\n" +
		"m=audio 6008 RTP/AVP 0\nc=IN IP4 peer.example\n"
	want := "v=0\no=bob 1 1 IN IP6 64:ff9b::c633:6402\ns=-\nc=IN IP6 64:ff9b::c633:6402\nt=0 0\n" +
		"m=audio 6000 RTP/AVP 0\na=rtcp:6001 IN IP6 64:ff9b::c633:6403\n" +
		"m=audio 6002 RTP/AVP 0\nc=IN IP4 0.0.0.0\n" +
		"m=video 6004 RTP/AVP 31\nc=IN IP4 233.252.0.1/127\n" +
		"m=video 6006 RTP/AVP 31\nc=IN IP6 2001:db8::5\n" +
		"m=audio 6008 RTP/AVP 0\nc=IN IP4 peer.example\n"
	opts := &Options{NAT64: netip.MustParsePrefix("64:ff9b::/96"), Origin: true}
	out, res, err := AppendRewrite(nil, []byte(in), opts)
	require.NoError(t, err)
	require.Equal(t, want, string(out))
	require.Equal(t, 3, res.Edits)
	again, res2, err := AppendRewrite(nil, out, opts)
	require.NoError(t, err)
	require.Equal(t, want, string(again), "idempotent")
	require.Zero(t, res2.Edits)

	noOrigin, _, err := AppendRewrite(nil, []byte(in), &Options{NAT64: netip.MustParsePrefix("2001:db8:64::/96")})
	require.NoError(t, err)
	require.Contains(t, string(noOrigin), "o=bob 1 1 IN IP4 198.51.100.2\n")
	require.Contains(t, string(noOrigin), "c=IN IP6 2001:db8:64::c633:6402\n")

	_, _, err = AppendRewrite(nil, []byte(in), &Options{NAT64: netip.MustParsePrefix("2001:db8::/33")})
	require.ErrorIs(t, err, ErrBadOptions, "not an RFC 6052 prefix length")
}
