package agent

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sipmsg"
)

// fakeRelay is a MediaRelay that records what it is asked.
type fakeRelay struct {
	req  RelayRequest
	mu   sync.Mutex
	sent []netip.AddrPort
}

func (f *fakeRelay) Allocate(context.Context) (netip.AddrPort, error) {
	return netip.MustParseAddrPort("192.0.2.7:49170"), nil
}
func (f *fakeRelay) Server() netip.AddrPort { return netip.MustParseAddrPort("192.0.2.7:3478") }
func (f *fakeRelay) HandlePacket([]byte, netip.AddrPort) ([]byte, netip.AddrPort, bool) {
	return nil, netip.AddrPort{}, false
}
func (f *fakeRelay) Send(_ []byte, peer netip.AddrPort) error {
	f.mu.Lock()
	f.sent = append(f.sent, peer)
	f.mu.Unlock()
	return nil
}
func (f *fakeRelay) Permit(context.Context, netip.AddrPort) error { return nil }
func (f *fakeRelay) Close() error                                 { return nil }

// TestRelayTransport: the relay is reached over the transport the
// configuration asks for (UDP by default where UDP works); over a stream
// the maker gets the stream keep-alive and a media callback that lands in
// OnRelayedMedia with the socket's index, and the plan says the
// transport. A stream relay with nowhere to hand media is not used.
func TestRelayTransport(t *testing.T) {
	t.Parallel()
	peer := netip.MustParseAddrPort("198.51.100.9:7000")
	for _, tc := range []struct {
		name    string
		asked   sipmsg.Transport
		onMedia bool
		want    sipmsg.Transport // zero: no relay made
	}{
		{"default", sipmsg.TransportUnknown, false, sipmsg.UDP},
		{"udp", sipmsg.UDP, true, sipmsg.UDP},
		{"tcp", sipmsg.TCP, true, sipmsg.TCP},
		{"tls", sipmsg.TLS, true, sipmsg.TLS},
		{"tcp without OnRelayedMedia", sipmsg.TCP, false, sipmsg.TransportUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stun := startSTUN(t)
			reg := startRegistrar(t)
			sip, rtp := listen(t), listen(t)
			var made *fakeRelay
			type media struct {
				i    int
				b    string
				peer netip.AddrPort
			}
			got := make(chan media, 1)
			cfg := Config{SIP: sip, Media: []net.PacketConn{rtp}, STUN: []netip.AddrPort{stun}, Registrar: local(reg.conn),
				Disable: PortMapping, Relay: RelayForce, RelayTransport: tc.asked, StreamKeepAlive: 3 * time.Second,
				NewRelay: func(_ context.Context, r RelayRequest) (MediaRelay, error) {
					made = &fakeRelay{req: r}
					return made, nil
				}}
			if tc.onMedia {
				cfg.OnRelayedMedia = func(i int, b []byte, peer netip.AddrPort) { got <- media{i, string(b), peer} }
			}
			a, err := New(cfg)
			require.NoError(t, err)
			defer a.Close()
			readLoop(t, a, nil)
			p, err := a.Start(context.Background())
			require.NoError(t, err)
			if tc.want == sipmsg.TransportUnknown {
				require.Nil(t, made)
				require.False(t, p.TwoWayAudio.Works, "%s", p)
				require.Contains(t, p.String(), "Config.OnRelayedMedia, which is not set")
				return
			}
			require.NotNil(t, made)
			require.Equal(t, tc.want, made.req.Transport)
			require.Equal(t, tc.want, p.Relay.Transport)
			require.True(t, p.TwoWayAudio.Works, "%s", p)
			require.Contains(t, p.TwoWayAudio.Reason, "over "+tc.want.String()+" (the configuration forces it)")
			require.Contains(t, p.String(), "relayed at 192.0.2.7:49170 by 192.0.2.7:3478 over "+tc.want.String())
			require.Equal(t, FromRelay, p.Media[0].From)
			require.NoError(t, a.SendMedia(0, []byte{0x80}, peer))
			require.Equal(t, []netip.AddrPort{peer}, made.sent)
			if tc.want == sipmsg.UDP {
				require.Nil(t, made.req.OnMedia, "over UDP relayed media comes back from HandleMediaPacket")
				require.Equal(t, rtp, made.req.Media)
				return
			}
			require.Equal(t, 3*time.Second, made.req.KeepAlive)
			made.req.OnMedia([]byte("rtp"), peer)
			require.Equal(t, media{0, "rtp", peer}, <-got)
		})
	}
}

func TestNewChecksRelayTransport(t *testing.T) {
	t.Parallel()
	_, err := New(Config{SIP: listen(t), Registrar: netip.MustParseAddrPort("127.0.0.1:5060"), RelayTransport: sipmsg.SCTP})
	require.ErrorIs(t, err, ErrConfig)
	require.ErrorContains(t, err, "relay transport SCTP")
}

// TestStartSilentSTUN: STUN servers and a registrar that answer nothing
// over UDP (UDP blocked) are taken for UDP blocked after BlockedAfter, not after
// discovery's whole timeout (20 s plus LifetimeMax): the plan says so and
// decides a relay (over TCP, see TestRelayTransport and the lab tests).
func TestStartSilentSTUN(t *testing.T) {
	t.Parallel()
	dead, deadRegistrar := listen(t), listen(t) // nothing answers over UDP, the registrar neither
	sip := listen(t)
	a, err := New(Config{SIP: sip, STUN: []netip.AddrPort{local(dead)}, Registrar: local(deadRegistrar), Disable: PortMapping,
		LifetimeMax: 40 * time.Second})
	require.NoError(t, err)
	defer a.Close()
	readLoop(t, a, nil)
	start := time.Now()
	p, err := a.Start(context.Background())
	require.NoError(t, err)
	t.Logf("silence taken for UDP blocked after %v", time.Since(start).Round(100*time.Millisecond))
	require.Equal(t, Relay, p.Decision, "%s", p)
	require.Contains(t, p.NATErr, ErrSilent.Error()+" in 8s")
	require.False(t, p.IncomingCalls.Works)
	require.Contains(t, p.Relay.Reason, "UDP seems blocked")
}
