package agent

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNAT64Peer: with Config.NAT64, a peer's IPv4 media address is reached
// at its synthesised IPv6 address (Reach) and its SDP reads so
// (AppendPeerSDP); without it both are unchanged.
func TestNAT64Peer(t *testing.T) {
	t.Parallel()
	reg := netip.MustParseAddrPort("127.0.0.1:5060")
	peer := netip.MustParseAddrPort("198.51.100.2:6000")
	body := []byte("v=0\r\no=- 1 1 IN IP4 198.51.100.2\r\ns=-\r\nc=IN IP4 198.51.100.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n")

	plain, err := New(Config{SIP: listen(t), Registrar: reg})
	require.NoError(t, err)
	require.Equal(t, peer, plain.Reach(peer))
	out, err := plain.AppendPeerSDP(nil, body)
	require.NoError(t, err)
	require.Equal(t, string(body), string(out))

	a, err := New(Config{SIP: listen(t), Registrar: reg, NAT64: netip.MustParsePrefix("64:ff9b::/96")})
	require.NoError(t, err)
	require.Equal(t, netip.MustParseAddrPort("[64:ff9b::c633:6402]:6000"), a.Reach(peer))
	v6 := netip.MustParseAddrPort("[2001:db8::1]:6000")
	require.Equal(t, v6, a.Reach(v6), "an IPv6 peer is reached directly")
	out, err = a.AppendPeerSDP([]byte("x"), body)
	require.NoError(t, err)
	require.Equal(t, "xv=0\r\no=- 1 1 IN IP6 64:ff9b::c633:6402\r\ns=-\r\nc=IN IP6 64:ff9b::c633:6402\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n", string(out))
}
